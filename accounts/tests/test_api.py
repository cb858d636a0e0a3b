"""The REST API: every endpoint for every kind of caller (the permission matrix), tenant isolation, and errors."""

import re
from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from accounts import api_keys, services
from accounts.models import ApiKey, Invitation, Membership, Role, Workspace
from accounts.tests.factories import UserFactory, issue_key, workspace_with

pytestmark = pytest.mark.django_db


@dataclass
class World:
    """Workspace A (owner, second owner, admin, member, a target member, a pending invitation, a key) and B."""

    a: Workspace
    owner: Membership
    admin: Membership
    member: Membership
    target: Membership
    invitation: Invitation
    key: ApiKey
    key_secret: str
    b: Workspace
    b_owner: Membership
    b_key_secret: str


@pytest.fixture
def world() -> World:
    a, (owner, _second_owner, admin, member, target) = workspace_with(
        Role.OWNER, Role.OWNER, Role.ADMIN, Role.MEMBER, Role.MEMBER
    )
    invitation = services.invitation_create(actor=owner, email="pending@example.com")
    issued = issue_key(owner, name="a-key")
    b, (b_owner,) = workspace_with(Role.OWNER)
    return World(
        a, owner, admin, member, target, invitation, issued.key, issued.secret, b, b_owner, issue_key(b_owner).secret
    )


def client_as(caller: str, world: World) -> APIClient:
    client = APIClient()
    if caller in ("owner", "admin", "member"):
        client.force_authenticate(user=getattr(world, caller).user)
    elif caller == "outsider":  # the owner of workspace B
        client.force_authenticate(user=world.b_owner.user)
    elif caller == "key":  # a key of workspace A
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {world.key_secret}")
    elif caller == "foreign key":  # a key of workspace B
        client.credentials(HTTP_X_API_KEY=world.b_key_secret)
    return client


def _w(world: World) -> str:
    return f"/api/v1/workspaces/{world.a.pk}"


# (name, method, url, body)
ENDPOINTS = {
    "workspace get": ("get", lambda w: f"{_w(w)}/", None),
    "workspace rename": ("patch", lambda w: f"{_w(w)}/", {"name": "Renamed"}),
    "workspace delete": ("delete", lambda w: f"{_w(w)}/", lambda w: {"confirm_name": w.a.name}),
    "members list": ("get", lambda w: f"{_w(w)}/members/", None),
    "member role": ("patch", lambda w: f"{_w(w)}/members/{w.target.pk}/", {"role": "admin"}),
    "member remove": ("delete", lambda w: f"{_w(w)}/members/{w.target.pk}/", None),
    "leave": ("post", lambda w: f"{_w(w)}/leave/", None),
    "invitations list": ("get", lambda w: f"{_w(w)}/invitations/", None),
    "invite": ("post", lambda w: f"{_w(w)}/invitations/", {"email": "new@example.com", "role": "member"}),
    "invitation revoke": ("delete", lambda w: f"{_w(w)}/invitations/{w.invitation.pk}/", None),
    "keys list": ("get", lambda w: f"{_w(w)}/api-keys/", None),
    "key create": ("post", lambda w: f"{_w(w)}/api-keys/", {"name": "new"}),
    "key get": ("get", lambda w: f"{_w(w)}/api-keys/{w.key.pk}/", None),
    "key revoke": ("post", lambda w: f"{_w(w)}/api-keys/{w.key.pk}/revoke/", None),
    "key rotate": ("post", lambda w: f"{_w(w)}/api-keys/{w.key.pk}/rotate/", {"grace_seconds": 60}),
}

CALLERS = ["owner", "admin", "member", "outsider", "key", "foreign key", "anonymous"]
# Expected status per endpoint, in the order of CALLERS.
MATRIX = {
    "workspace get": (200, 200, 200, 404, 200, 404, 401),
    "workspace rename": (200, 200, 403, 404, 403, 403, 401),
    "workspace delete": (204, 403, 403, 404, 403, 403, 401),
    "members list": (200, 200, 200, 404, 403, 403, 401),
    "member role": (200, 200, 403, 404, 403, 403, 401),
    "member remove": (204, 204, 403, 404, 403, 403, 401),
    "leave": (204, 204, 204, 404, 403, 403, 401),
    "invitations list": (200, 200, 200, 404, 403, 403, 401),
    "invite": (201, 201, 403, 404, 403, 403, 401),
    "invitation revoke": (204, 204, 403, 404, 403, 403, 401),
    "keys list": (200, 200, 200, 404, 403, 403, 401),
    "key create": (201, 201, 403, 404, 403, 403, 401),
    "key get": (200, 200, 200, 404, 403, 403, 401),
    "key revoke": (200, 200, 403, 404, 403, 403, 401),
    "key rotate": (201, 201, 403, 404, 403, 403, 401),
}


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
@pytest.mark.parametrize("caller", CALLERS)
def test_permission_matrix(world, endpoint, caller):
    method, url, body = ENDPOINTS[endpoint]
    expected = MATRIX[endpoint][CALLERS.index(caller)]
    payload = body(world) if callable(body) else body

    response = getattr(client_as(caller, world), method)(url(world), payload, format="json")

    assert response.status_code == expected, response.content
    if expected >= 400:
        body_json = response.json()
        assert body_json["code"]
        assert body_json["message"]
    if expected == 401:
        assert response["WWW-Authenticate"] == 'Bearer realm="toolport"'


def test_refused_calls_change_nothing_in_another_workspace(world):
    """A user and a key of workspace B try to read, change, revoke and invite in A: all refused, A unchanged."""
    before = (
        world.a.name,
        sorted(Membership.objects.filter(workspace=world.a).values_list("pk", "role")),
        sorted(Invitation.objects.filter(workspace=world.a).values_list("pk", "status")),
        sorted(ApiKey.objects.filter(workspace=world.a).values_list("pk", "revoked_at")),
    )
    for caller in ("outsider", "foreign key"):
        for endpoint, (method, url, body) in ENDPOINTS.items():
            payload = body(world) if callable(body) else body
            response = getattr(client_as(caller, world), method)(url(world), payload, format="json")
            assert response.status_code in (403, 404), (caller, endpoint, response.status_code)
    world.a.refresh_from_db()
    after = (
        world.a.name,
        sorted(Membership.objects.filter(workspace=world.a).values_list("pk", "role")),
        sorted(Invitation.objects.filter(workspace=world.a).values_list("pk", "status")),
        sorted(ApiKey.objects.filter(workspace=world.a).values_list("pk", "revoked_at")),
    )
    assert after == before


def test_ids_of_another_workspace_are_not_found_even_inside_ones_own(world):
    """Workspace A's owner asks for B's key, member and invitation under A's URL: 404, never data."""
    b_key = ApiKey.objects.get(workspace=world.b)
    client = client_as("owner", world)
    assert client.get(f"{_w(world)}/api-keys/{b_key.pk}/").status_code == 404
    assert client.post(f"{_w(world)}/api-keys/{b_key.pk}/revoke/").status_code == 404
    assert (
        client.patch(f"{_w(world)}/members/{world.b_owner.pk}/", {"role": "member"}, format="json").status_code == 404
    )
    assert client.get("/api/v1/workspaces/not-a-uuid/").status_code == 404
    assert api_keys.api_key_authenticate(raw_key=world.b_key_secret)  # still active


def test_whoami_with_a_key_names_the_workspace_and_scopes(world):
    response = client_as("key", world).get("/api/v1/whoami")
    assert response.status_code == 200
    assert response.json()["workspace"] == {"id": str(world.a.pk), "name": world.a.name}
    assert response.json()["key"]["prefix"] == world.key.prefix
    assert world.key_secret not in response.content.decode()


def test_a_key_is_returned_once_and_then_only_its_prefix(world):
    client = client_as("admin", world)
    created = client.post(f"{_w(world)}/api-keys/", {"name": "deploy bot", "tools": ["search"]}, format="json")
    assert created.status_code == 201
    assert created["Cache-Control"] == "no-store"
    secret = created.json()["key"]
    assert secret.startswith(created.json()["prefix"] + "_")

    listed = client.get(f"{_w(world)}/api-keys/").content.decode()
    assert created.json()["prefix"] in listed
    assert secret not in listed
    assert client_as("anonymous", world).get("/api/v1/whoami", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200


@pytest.mark.parametrize(
    ("header", "value", "message"),
    [
        ("HTTP_AUTHORIZATION", "Bearer", "Malformed Authorization header"),
        ("HTTP_AUTHORIZATION", "Bearer two words", "Malformed Authorization header"),
        ("HTTP_AUTHORIZATION", "Bearer sk-someone-elses", "not a Toolport API key"),
        ("HTTP_X_API_KEY", "", "X-API-Key header is empty"),
    ],
)
def test_bad_credentials_get_401_and_say_why(header, value, message):
    response = APIClient().get("/api/v1/whoami", **{header: value})
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="toolport"'
    assert message in response.json()["message"]


def test_a_revoked_key_gets_401(world):
    client_as("owner", world).post(f"{_w(world)}/api-keys/{world.key.pk}/revoke/")
    response = client_as("key", world).get("/api/v1/whoami")
    assert response.status_code == 401
    assert "revoked" in response.json()["message"]


def test_validation_errors_name_the_field(world):
    response = client_as("owner", world).post(f"{_w(world)}/api-keys/", {"max_security_level": 9}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert set(response.json()["details"]) == {"name", "max_security_level"}


def test_domain_conflicts_are_409_with_a_message(world):
    client = client_as("owner", world)
    response = client.post(f"{_w(world)}/invitations/", {"email": world.member.user.email}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "already_member"


def test_accepting_an_invitation_through_the_api(world):
    invitee = UserFactory.create()
    invitation = services.invitation_create(actor=world.owner, email=invitee.email)
    client = APIClient()
    client.force_authenticate(user=invitee)
    response = client.post(
        "/api/v1/invitations/accept/", {"token": services.invitation_token(invitation)}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["id"] == str(world.a.pk)
    assert response.json()["role"] == "member"
    again = client.post("/api/v1/invitations/accept/", {"token": services.invitation_token(invitation)}, format="json")
    assert again.status_code == 400
    assert "already been used" in again.json()["message"]


def test_the_schema_and_docs_are_served(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/workspaces/{workspace_id}/api-keys/" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content
    # its scripts and styles are served from here, not a CDN (the page also holds a random CSRF token, so a search
    # for "cdn" in its text failed about once in 800 runs)
    assets = re.findall(rb'(?:src|href)="([^"]*)"', docs.content)
    assert assets
    assert all(asset.startswith(b"/static/drf_spectacular_sidecar/") for asset in assets)
