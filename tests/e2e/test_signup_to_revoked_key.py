"""A new user's first ten minutes, in a real browser: sign up, verify the email, create a workspace and a key,
use the key, revoke it, and see the key refused."""

import re

import httpx
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PASSWORD = "a long and unusual passphrase"


def test_signup_verify_create_key_use_it_and_revoke_it(page, live_server, mailoutbox):
    page.goto("/")
    page.get_by_role("link", name="Create an account").click()
    page.get_by_label("Email:").fill("ada@example.com")
    page.get_by_label("Password:", exact=True).fill(PASSWORD)
    page.get_by_label("Password (again):").fill(PASSWORD)
    page.get_by_role("button", name="Sign Up").click()
    page.get_by_text("Verify Your Email Address").wait_for()

    assert len(mailoutbox) == 1
    link = re.search(r"https?://\S+/accounts/confirm-email/\S+", mailoutbox[0].body)
    assert link is not None, mailoutbox[0].body
    page.goto(link.group(0))
    page.get_by_role("button", name="Confirm").click()

    # Confirmed and signed in: the console opens the personal workspace.
    page.goto("/console/")
    page.get_by_role("heading", name="Dashboard").wait_for()
    page.get_by_text("Personal").first.wait_for()

    page.locator("summary[aria-label='Switch workspace']").click()
    page.get_by_role("link", name="+ New workspace").click()
    page.get_by_label("Workspace name").fill("Acme research")
    page.get_by_role("button", name="Create workspace").click()
    page.get_by_text("Workspace Acme research created.").wait_for()

    page.get_by_role("link", name="API keys").click()
    page.get_by_label("Name").fill("Claude Desktop")
    page.get_by_role("button", name="Create key").click()
    page.get_by_text("This is the only time Toolport shows this key").wait_for()
    key = page.locator("#new-key").input_value()
    assert key.startswith("tp_live_")
    page.locator("#copy-key").click()
    page.locator("#copy-key").get_by_text("Copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == key

    # Copy-ready MCP client configurations carry the new key and the endpoint.
    assert page.locator("#mcp-endpoint").inner_text() == f"{live_server.url}/mcp"
    page.locator("#mcp-clients").get_by_role("tab", name="Cursor").click()
    cursor = page.locator("#mcp-config-cursor")
    cursor.get_by_role("button", name="Copy").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert f'"Authorization": "Bearer {key}"' in copied
    assert f'"url": "{live_server.url}/mcp"' in copied

    whoami = httpx.get(f"{live_server.url}/api/v1/whoami", headers={"Authorization": f"Bearer {key}"})
    assert whoami.status_code == 200
    assert whoami.json()["workspace"]["name"] == "Acme research"

    page.get_by_role("link", name="I have copied it: back to keys").click()
    assert key not in page.content()  # only the prefix is ever shown again
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke").click()
    page.get_by_text("Key revoked.").wait_for()

    refused = httpx.get(f"{live_server.url}/api/v1/whoami", headers={"Authorization": f"Bearer {key}"})
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
