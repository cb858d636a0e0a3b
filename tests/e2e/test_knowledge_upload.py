"""Knowledge in a real browser: create a knowledge base, drop several files on it at once, watch each become ready
(or see why it was refused), then search and follow a result to its passage."""

import pytest
from celery.contrib.testing.worker import start_worker
from django.utils import timezone

from accounts.models import Role
from accounts.tests.factories import PASSWORD, workspace_with
from billing.quotas import billing_account_get, effective_plan
from config.celery import app
from rag.models import Document, DocumentStatus

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

GUIDE = "# Setup guide\n\n## Installing\n\nInstall the agent with the package manager, then sign in with your key.\n"
FAQ = "Frequently asked questions. Refunds are issued within fourteen days of a cancelled subscription.\n"


def test_drop_several_files_watch_them_become_ready_and_search_them(page, live_server, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    workspace, (owner,) = workspace_with(Role.OWNER)
    plan = effective_plan(billing_account_get(workspace_id=workspace.pk), timezone.now())
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        page.goto("/accounts/login/")
        page.get_by_label("Email:").fill(owner.user.email)
        page.get_by_label("Password:").fill(PASSWORD)
        page.get_by_role("button", name="Sign In").click()
        page.get_by_role("heading", name="Dashboard").wait_for()

        page.get_by_role("link", name="Knowledge", exact=True).click()
        page.get_by_text("No knowledge bases yet").wait_for()
        page.get_by_label("Name").fill("handbook")
        page.get_by_label("Title").fill("Team handbook")
        page.get_by_role("button", name="Create knowledge base").click()
        page.get_by_text("Knowledge base handbook created.").wait_for()
        page.get_by_text("No documents yet: drop some above.").wait_for()
        page.wait_for_load_state()  # the drop zone's script runs after the page is parsed (defer)

        # Drop three files at once on the drop zone: two documents and an image it must refuse.
        files = [
            ["guide.md", GUIDE, "text/markdown"],
            ["faq.txt", FAQ, "text/plain"],
            ["photo.png", "\x89PNG\r\n\x1a\n", "image/png"],
        ]
        transfer = page.evaluate_handle(
            """(files) => {
                const transfer = new DataTransfer();
                for (const [name, text, type] of files) transfer.items.add(new File([text], name, { type }));
                return transfer;
            }""",
            files,
        )
        page.dispatch_event("form[data-dropzone]", "drop", {"dataTransfer": transfer})

        refused = page.locator(".upload-failed")
        refused.wait_for()
        assert "photo.png" in refused.inner_text()
        rows = page.locator("#document-rows tr")
        for name in ("guide.md", "faq.txt"):
            page.locator("#document-rows tr", has_text=name).locator(".badge-active", has_text="ready").wait_for(
                timeout=60_000
            )
        assert rows.count() == 2
        assert Document.objects.filter(status=DocumentStatus.READY).count() == 2
        assert "chunk" in page.locator("#document-rows tr", has_text="guide.md").inner_text()

        # A file over the plan's size is refused in the page before it is sent.
        too_big = page.evaluate_handle(
            """(size) => {
                const transfer = new DataTransfer();
                transfer.items.add(new File([new Uint8Array(size)], "huge.txt", { type: "text/plain" }));
                return transfer;
            }""",
            plan.max_upload_bytes + 1,
        )
        page.dispatch_event("form[data-dropzone]", "drop", {"dataTransfer": too_big})
        page.locator(".upload-failed", has_text="huge.txt").wait_for()
        assert "accepts files up to" in page.locator(".upload-failed", has_text="huge.txt").inner_text()

        page.get_by_role("link", name="Search this knowledge base").click()
        page.get_by_label("Question or keywords").fill("how long do refunds take")
        page.get_by_role("button", name="Search").click()
        first = page.locator(".result").first
        first.wait_for()
        assert "faq" in first.inner_text().lower()
        assert first.locator("mark").count() >= 1
        first.locator("a.result-title").click()
        page.locator("mark#passage").wait_for()
        assert "fourteen days" in page.locator("mark#passage").inner_text()
