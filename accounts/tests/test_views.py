"""The console pages for workspaces, members, invitations and keys, as a signed-in browser sees them."""

import pytest
from django.urls import reverse

from accounts import services
from accounts.models import ApiKey, Membership, Role, Workspace
from accounts.tests.factories import UserFactory, issue_key, workspace_with

pytestmark = pytest.mark.django_db


def signed_in(client, membership):
    client.force_login(membership.user)
    return client


def test_console_opens_the_last_workspace_or_offers_to_create_one(client):
    lonely = UserFactory.create()
    client.force_login(lonely)
    assert client.get("/console/")["Location"] == reverse("console:workspace_create")

    response = client.post(reverse("console:workspace_create"), {"name": "Lab"})
    workspace = Workspace.objects.get(name="Lab")
    assert response["Location"] == reverse("console:dashboard", args=[workspace.pk])
    assert client.get("/console/")["Location"] == reverse("console:dashboard", args=[workspace.pk])


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get("/console/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_shell_shows_the_navigation_and_the_workspace_switcher(client):
    workspace, (owner,) = workspace_with(Role.OWNER)
    other = services.workspace_create(user=owner.user, name="Second")
    page = signed_in(client, owner).get(reverse("console:dashboard", args=[workspace.pk])).content.decode()
    for label in ("Dashboard", "API keys", "Knowledge", "Tools", "Usage", "Billing", "Settings"):
        assert f">{label}</a>" in page
    assert reverse("console:dashboard", args=[other.pk]) in page
    assert "Connect your first MCP client" in page  # empty state: no key yet


def test_a_new_key_is_shown_once_then_only_its_prefix(client):
    workspace, (admin,) = workspace_with(Role.ADMIN)
    url = reverse("console:api_keys", args=[workspace.pk])
    signed_in(client, admin)

    created = client.post(url, {"name": "Claude Desktop", "max_security_level": 2, "tools": "search, fetch"})
    assert created.status_code == 200
    assert "no-store" in created["Cache-Control"]
    key = ApiKey.objects.get(workspace=workspace)
    page = created.content.decode()
    secret = page.split('id="new-key" type="text" readonly value="', 1)[1].split('"', 1)[0]
    assert secret.startswith(key.prefix + "_")
    assert key.tools == ["fetch", "search"]

    listing = client.get(url).content.decode()
    assert key.prefix in listing
    assert secret not in listing


def test_key_form_errors_are_shown_next_to_the_field(client):
    workspace, (admin,) = workspace_with(Role.ADMIN)
    response = signed_in(client, admin).post(
        reverse("console:api_keys", args=[workspace.pk]), {"name": "", "max_security_level": 2}
    )
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert not ApiKey.objects.exists()


def test_members_see_keys_but_cannot_create_them(client):
    workspace, (owner, member) = workspace_with(Role.OWNER, Role.MEMBER)
    issue_key(owner, name="shared")
    url = reverse("console:api_keys", args=[workspace.pk])
    page = signed_in(client, member).get(url).content.decode()
    assert "shared" in page
    assert "Create a key" not in page
    response = client.post(url, {"name": "sneaky", "max_security_level": 2})
    assert response.status_code == 400
    assert "Only workspace admins and owners can create API keys" in response.content.decode()
    assert ApiKey.objects.count() == 1


def test_revoke_and_rotate_from_the_console(client):
    workspace, (owner,) = workspace_with(Role.OWNER)
    issued = issue_key(owner, name="old")
    signed_in(client, owner)
    rotated = client.post(reverse("console:api_key_rotate", args=[workspace.pk, issued.key.pk]), {"grace_minutes": 10})
    assert rotated.status_code == 200
    assert "Your rotated API key" in rotated.content.decode()
    new_key = ApiKey.objects.get(rotated_from=issued.key)
    response = client.post(reverse("console:api_key_revoke", args=[workspace.pk, new_key.pk]), follow=True)
    assert "Key revoked" in response.content.decode()
    new_key.refresh_from_db()
    assert new_key.status == "revoked"


def test_another_workspaces_pages_and_objects_are_not_found(client):
    a, (a_owner,) = workspace_with(Role.OWNER)
    b, (b_owner, b_member) = workspace_with(Role.OWNER, Role.MEMBER)
    b_key = issue_key(b_owner).key
    b_invitation = services.invitation_create(actor=b_owner, email="x@example.com")
    signed_in(client, a_owner)

    for name in ("dashboard", "api_keys", "settings"):
        assert client.get(reverse(f"console:{name}", args=[b.pk])).status_code == 404
    assert client.get(reverse("console:section", args=[b.pk, "usage"])).status_code == 404
    posts = [
        reverse("console:api_key_revoke", args=[b.pk, b_key.pk]),
        reverse("console:api_key_revoke", args=[a.pk, b_key.pk]),
        reverse("console:api_key_rotate", args=[a.pk, b_key.pk]),
        reverse("console:member_remove", args=[a.pk, b_member.pk]),
        reverse("console:member_role", args=[a.pk, b_member.pk]),
        reverse("console:invitation_revoke", args=[a.pk, b_invitation.pk]),
        reverse("console:workspace_delete", args=[b.pk]),
        reverse("console:invitation_create", args=[b.pk]),
    ]
    for url in posts:
        assert client.post(url, {"role": "owner", "grace_minutes": 0, "confirm_name": b.name}).status_code == 404, url
    b_key.refresh_from_db()
    assert b_key.status == "active"
    assert Membership.objects.filter(workspace=b).count() == 2


def test_deleting_a_workspace_needs_its_typed_name(client):
    workspace, (owner,) = workspace_with(Role.OWNER)
    signed_in(client, owner)
    url = reverse("console:workspace_delete", args=[workspace.pk])
    response = client.post(url, {"confirm_name": "wrong"}, follow=True)
    assert "Type the workspace name exactly" in response.content.decode()
    assert Workspace.objects.filter(pk=workspace.pk).exists()

    response = client.post(url, {"confirm_name": workspace.name}, follow=True)
    assert "were deleted" in response.content.decode()
    assert not Workspace.objects.filter(pk=workspace.pk).exists()


def test_the_last_owner_is_told_why_they_cannot_leave(client):
    workspace, (owner,) = workspace_with(Role.OWNER)
    response = signed_in(client, owner).post(reverse("console:workspace_leave", args=[workspace.pk]), follow=True)
    assert "You are the last owner" in response.content.decode()


def test_an_invitation_link_for_a_visitor_and_for_the_invitee(client):
    workspace, (owner,) = workspace_with(Role.OWNER)
    invitation = services.invitation_create(actor=owner, email="friend@example.com", role=Role.ADMIN)
    url = reverse("invitation_accept", args=[services.invitation_token(invitation)])

    page = client.get(url).content.decode()
    assert workspace.name in page
    assert "/accounts/signup/?next=" in page

    client.force_login(UserFactory.create(email="friend@example.com"))
    response = client.post(url)
    assert response["Location"] == reverse("console:dashboard", args=[workspace.pk])
    assert Membership.objects.get(workspace=workspace, user__email="friend@example.com").role == Role.ADMIN
    used = client.get(url)
    assert used.status_code == 400
    assert "already been used" in used.content.decode()


def test_account_pages_use_the_toolport_look(client):
    page = client.get("/accounts/login/").content.decode()
    assert "/static/css/console.css" in page
    assert "auth-card" in page
    client.force_login(UserFactory.create())
    assert "Two-factor authentication" in client.get("/accounts/email/").content.decode()
    assert client.get("/accounts/2fa/").status_code == 200


def test_repeated_failed_sign_ins_are_rate_limited(client):
    user = UserFactory.create()
    for _ in range(5):
        response = client.post("/accounts/login/", {"login": user.email, "password": "not it"})
        assert "Too many failed login attempts" not in response.content.decode()
    response = client.post("/accounts/login/", {"login": user.email, "password": "not it"})
    assert "Too many failed login attempts" in response.content.decode()


def test_a_new_account_created_from_an_invitation_comes_back_to_it_and_joins(client):
    import re

    from django.core import mail

    workspace, (owner,) = workspace_with(Role.OWNER)
    invitation = services.invitation_create(actor=owner, email="newcomer@example.com")
    url = reverse("invitation_accept", args=[services.invitation_token(invitation)])
    password = "a long and unusual passphrase"

    signup = client.post(
        f"/accounts/signup/?next={url}",
        {"email": "newcomer@example.com", "password1": password, "password2": password, "next": url},
    )
    assert signup["Location"] == "/accounts/confirm-email/"
    link = re.search(r"https?://[^/\s]+(/accounts/confirm-email/\S+)", str(mail.outbox[-1].body))
    assert link is not None
    confirmed = client.post(link.group(1))
    assert confirmed["Location"] == url  # verified, signed in, and back on the invitation

    joined = client.post(url)
    assert joined["Location"] == reverse("console:dashboard", args=[workspace.pk])
    assert Membership.objects.filter(workspace=workspace, user__email="newcomer@example.com").exists()
