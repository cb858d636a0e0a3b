"""Until the MCP endpoint lands, its paths ask for an API key and then answer a clear 501 on every transport."""

import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import HttpCommunicator, WebsocketCommunicator

from accounts.models import Role
from accounts.tests.factories import issue_key, workspace_with
from config.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def api_key() -> str:
    def issue() -> str:
        _workspace, (owner,) = workspace_with(Role.OWNER)
        return issue_key(owner).secret

    return await database_sync_to_async(issue)()


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/mcp"), ("GET", "/mcp"), ("DELETE", "/mcp"), ("POST", "/mcp/"), ("GET", "/sse"), ("POST", "/messages")],
)
async def test_http_transports_answer_501_json_to_a_valid_key(method, path, api_key):
    headers = [(b"authorization", f"Bearer {api_key}".encode())]
    response = await HttpCommunicator(application, method, path, body=b"{}", headers=headers).get_response()

    assert response["status"] == 501
    assert (b"Content-Type", b"application/json") in response["headers"]
    body = json.loads(response["body"])
    assert body["code"] == "not_implemented"
    assert body["details"]["path"] == path


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [(b"authorization", b"Bearer tp_live_000000000000_" + b"x" * 43)],
        [(b"authorization", b"Bearer")],
        [(b"x-api-key", b"not-a-key")],
    ],
    ids=["no key", "unknown key", "malformed header", "garbage key"],
)
async def test_http_transports_refuse_without_a_valid_key(headers):
    response = await HttpCommunicator(application, "POST", "/mcp", body=b"{}", headers=headers).get_response()

    assert response["status"] == 401
    assert (b"www-authenticate", b'Bearer realm="toolport"') in response["headers"]
    body = json.loads(response["body"])
    assert body["code"] == "invalid_api_key"
    assert body["message"]


async def test_websocket_transport_says_501_and_closes(api_key):
    communicator = WebsocketCommunicator(
        application, "/mcp/ws", headers=[(b"x-api-key", api_key.encode())], subprotocols=["mcp"]
    )
    connected, subprotocol = await communicator.connect()
    assert connected
    assert subprotocol == "mcp"
    message = await communicator.receive_json_from()
    assert message["code"] == "not_implemented"
    closed = await communicator.receive_output()
    assert closed["type"] == "websocket.close"
    assert closed["code"] == 4501


async def test_websocket_without_a_key_is_refused():
    communicator = WebsocketCommunicator(application, "/mcp/ws", subprotocols=["mcp"])
    connected, code = await communicator.connect()
    assert not connected
    assert code == 4401


async def test_other_paths_still_reach_django():
    response = await HttpCommunicator(application, "GET", "/healthz", headers=[(b"host", b"localhost")]).get_response()
    assert response["status"] == 200
