"""Staff publish global knowledge bases to plan tiers from the admin, upload to them (audited), and workspaces on
those tiers, and only those, can read them; a workspace's own knowledge bases are read-only to staff."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import Role
from accounts.tests.factories import MembershipFactory
from billing.models import BillingAccount, Plan, Tier
from monitoring.models import AuditEvent
from rag.models import Document, KnowledgeBase
from rag.search import readable_knowledge_bases
from rag.services import knowledge_base_create

pytestmark = pytest.mark.django_db(transaction=True)


def _on_tier(tier: str):
    member = MembershipFactory.create(role=Role.OWNER)
    BillingAccount.objects.update_or_create(workspace=member.workspace, defaults={"plan": Plan.objects.get(tier=tier)})
    return member


def test_staff_publish_a_global_knowledge_base_to_chosen_plans(admin_client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    added = admin_client.post(
        "/admin/rag/knowledgebase/add/",
        {
            "name": "Product-Guides",
            "title": "Product guides",
            "description": "",
            "plan_tiers": [Tier.STARTER, Tier.PROFESSIONAL],
            "documents-TOTAL_FORMS": "0",
            "documents-INITIAL_FORMS": "0",
        },
    )
    assert added.status_code == 302, added.content.decode()[:2000]
    base = KnowledgeBase.objects.get(workspace__isnull=True)
    assert base.name == "product-guides"
    assert AuditEvent.objects.filter(action="knowledge_base.create").exists()

    uploaded = admin_client.post(
        f"/admin/rag/knowledgebase/{base.pk}/upload/",
        {
            "documents": [
                SimpleUploadedFile("setup.md", b"# Setup\n\nInstall the agent, then sign in."),
                SimpleUploadedFile("faq.txt", b"Questions people ask about the agent."),
                SimpleUploadedFile("virus.exe", b"MZ\x90\x00"),
            ],
            "tags": "guides",
        },
        follow=True,
    )
    page = uploaded.content.decode()
    assert "setup.md uploaded" in page
    assert "virus.exe" in page  # refused, with its reason
    assert sorted(Document.objects.filter(knowledge_base=base).values_list("name", flat=True)) == [
        "faq.txt",
        "setup.md",
    ]
    assert all(key.startswith("global/documents/") for key in Document.objects.values_list("file", flat=True))
    assert AuditEvent.objects.filter(action="document.upload").count() == 2

    starter, free = _on_tier(Tier.STARTER), _on_tier(Tier.FREE)
    assert base in readable_knowledge_bases(workspace_id=starter.workspace_id)
    assert base not in readable_knowledge_bases(workspace_id=free.workspace_id)


def test_a_workspaces_knowledge_base_is_read_only_to_staff(admin_client):
    member = MembershipFactory.create(role=Role.OWNER)
    base = knowledge_base_create(actor=member, name="private")
    assert admin_client.get(f"/admin/rag/knowledgebase/{base.pk}/change/").status_code == 200
    changed = admin_client.post(f"/admin/rag/knowledgebase/{base.pk}/change/", {"name": "stolen"})
    assert changed.status_code == 403
    assert admin_client.post(f"/admin/rag/knowledgebase/{base.pk}/delete/", {"post": "yes"}).status_code == 403
    assert admin_client.get(f"/admin/rag/knowledgebase/{base.pk}/upload/").status_code in (403, 404)
    base.refresh_from_db()
    assert base.name == "private"
