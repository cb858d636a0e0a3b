"""Every audited action leaves its entry. The other suites check most actions where they are made (accounts, billing,
tools, rag); this file covers the rest, and checks that the list below names every action the code records, so a new
audited action cannot go untested."""

import re
from pathlib import Path

import pytest

from accounts import services as account_services
from accounts.models import Role
from accounts.tests.factories import MembershipFactory, UserFactory, workspace_with
from billing.models import Plan, Tier
from billing.payments import checkout_start
from core.embedded.paths import BASE_DIR
from monitoring.models import AuditEvent
from rag.models import KnowledgeBase
from rag.services import document_delete, document_upload, knowledge_base_create, knowledge_base_publish
from tools.models import UpstreamServer
from tools.services import upstream_server_save

pytestmark = pytest.mark.django_db

# Each audited action and the test file that asserts its entry.
COVERED = {
    "user.signup": "accounts/tests/test_audit.py",
    "user.login_failed": "accounts/tests/test_audit.py",
    "workspace.create": "this file",
    "workspace.rename": "this file",
    "workspace.delete": "accounts/tests/test_audit.py",
    "api_key.create": "accounts/tests/test_audit.py",
    "api_key.rotate": "accounts/tests/test_audit.py",
    "api_key.revoke": "accounts/tests/test_audit.py",
    "invitation.create": "accounts/tests/test_audit.py",
    "invitation.revoke": "this file",
    "invitation.accept": "this file",
    "membership.role_change": "accounts/tests/test_audit.py",
    "membership.remove": "accounts/tests/test_audit.py",
    "membership.leave": "this file",
    "billing.checkout_start": "this file",
    "billing.plan_change": "billing/tests/test_webhooks.py",
    "tool.create": "tools/tests/test_registry.py",
    "tool.update": "tools/tests/test_registry.py",
    "tool.delete": "tools/tests/test_registry.py",
    "tool.test": "tools/tests/test_admin.py",
    "upstream.create": "tools/tests/test_admin.py",
    "upstream.update": "this file",
    "upstream.sync": "tools/tests/test_upstream.py",
    "upstream.circuit_reset": "tools/tests/test_admin.py",
    "knowledge_base.create": "rag/tests/test_admin.py",
    "knowledge_base.update": "this file",
    "knowledge_base.delete": "rag/tests/test_console.py",
    "document.upload": "rag/tests/test_admin.py",
    "document.retry": "rag/tests/test_console.py",
    "document.delete": "this file",
}
THIS_FILE = Path(__file__)

_ACTION = re.compile(r'action="([a-z_]+\.[a-z_]+)"(?: if creating else "([a-z_]+\.[a-z_]+)")?')


def test_the_list_names_every_action_the_code_records():
    recorded: set[str] = set()
    for app in ("accounts", "billing", "tools", "rag", "core", "monitoring"):
        for path in (Path(BASE_DIR) / app).rglob("*.py"):
            if "tests" in path.parts:
                continue
            for match in _ACTION.finditer(path.read_text()):
                recorded.update(name for name in match.groups() if name)
    assert recorded == set(COVERED)
    for action, where in COVERED.items():
        path = THIS_FILE if where == "this file" else Path(BASE_DIR) / where
        assert f'"{action}"' in path.read_text(), (action, where)  # its entry is asserted there


def test_workspace_and_membership_changes_are_audited():
    user = UserFactory.create()
    workspace = account_services.workspace_create(user=user, name="Side project")
    assert AuditEvent.objects.filter(action="workspace.create", workspace=workspace, actor=user).exists()
    _workspace, (owner, member) = workspace_with(Role.OWNER, Role.MEMBER)
    account_services.workspace_rename(actor=owner, name="Renamed")
    renamed = AuditEvent.objects.get(action="workspace.rename", actor=owner.user)
    assert renamed.workspace is not None
    assert renamed.workspace.name == "Renamed"
    account_services.membership_leave(member=member)
    assert AuditEvent.objects.filter(action="membership.leave", actor=member.user).exists()
    invitation = account_services.invitation_create(actor=owner, email="first@example.com")
    account_services.invitation_revoke(actor=owner, invitation=invitation)
    assert AuditEvent.objects.filter(action="invitation.revoke", actor=owner.user).exists()
    invited = UserFactory.create(email="second@example.com")
    token = account_services.invitation_token(account_services.invitation_create(actor=owner, email=invited.email))
    account_services.invitation_accept(token=token, user=invited)
    assert AuditEvent.objects.filter(action="invitation.accept", actor=invited).exists()


def test_document_delete_is_audited(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    owner = MembershipFactory.create(role=Role.OWNER)
    Plan.objects.filter(accounts__workspace=owner.workspace).update(storage_bytes=None)
    base = knowledge_base_create(actor=owner, name="notes")
    document = document_upload(actor=owner, knowledge_base=base, name="a.md", data=b"# A\n\nalpha")
    document_delete(actor=owner, document=document)
    assert AuditEvent.objects.get(action="document.delete").detail["name"] == "a.md"


def test_checkout_start_is_audited(stripe_api):
    owner = MembershipFactory.create(role=Role.OWNER)
    url = checkout_start(actor=owner, tier=Tier.STARTER)
    assert url.startswith("https://checkout.stripe.com/")
    event = AuditEvent.objects.get(action="billing.checkout_start")
    assert event.detail["tier"] == Tier.STARTER


def test_changes_to_upstream_servers_and_global_knowledge_bases_are_audited(admin_user):
    server = upstream_server_save(server=UpstreamServer(name="weather", url="https://weather.example.com/mcp"))
    server.url = "https://weather.example.com/v2/mcp"
    upstream_server_save(server=server, actor=admin_user)
    assert AuditEvent.objects.filter(action="upstream.update", actor=admin_user).exists()
    base = knowledge_base_publish(actor=admin_user, knowledge_base=KnowledgeBase(name="guides", plan_tiers=["free"]))
    base.plan_tiers = ["free", "starter"]
    knowledge_base_publish(actor=admin_user, knowledge_base=base)
    event = AuditEvent.objects.get(action="knowledge_base.update")
    assert event.detail["plan_tiers"] == ["free", "starter"]
