"""Until the MCP endpoint lands, its paths answer a clear 501 on every transport, ahead of Django's routes."""

import json

import pytest
from channels.testing import HttpCommunicator, WebsocketCommunicator

from config.asgi import application


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/mcp"),
        ("GET", "/mcp"),
        ("DELETE", "/mcp"),
        ("POST", "/mcp/"),
        ("GET", "/sse"),
        ("POST", "/messages"),
    ],
)
async def test_http_transports_answer_501_json(method, path):
    communicator = HttpCommunicator(application, method, path, body=b"{}")
    response = await communicator.get_response()

    assert response["status"] == 501
    assert (b"Content-Type", b"application/json") in response["headers"]
    body = json.loads(response["body"])
    assert body["code"] == "not_implemented"
    assert body["details"]["path"] == path
    assert "not available" in body["message"]


async def test_websocket_transport_says_501_and_closes():
    communicator = WebsocketCommunicator(application, "/mcp/ws", subprotocols=["mcp"])
    connected, subprotocol = await communicator.connect()
    assert connected
    assert subprotocol == "mcp"

    message = await communicator.receive_json_from()
    assert message["code"] == "not_implemented"
    assert message["details"]["transport"] == "WebSocket"
    closed = await communicator.receive_output()
    assert closed["type"] == "websocket.close"
    assert closed["code"] == 4501


async def test_other_paths_still_reach_django():
    communicator = HttpCommunicator(application, "GET", "/healthz", headers=[(b"host", b"localhost")])
    response = await communicator.get_response()
    assert response["status"] == 200
