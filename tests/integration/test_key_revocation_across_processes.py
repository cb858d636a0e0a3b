"""A key revoked in one process is refused by another process (a separate server) within a second."""

import time

import httpx
import pytest

from accounts import api_keys
from accounts.models import Role
from accounts.tests.factories import issue_key, workspace_with
from tests.integration.conftest import asgi_server_start

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def second_server():
    """The ASGI server serving Toolport from another process, on the test database and the same Redis."""
    server = asgi_server_start()
    yield server.base
    server.stop()


def test_a_revoked_key_is_refused_by_another_process_within_a_second(second_server):
    _workspace, (owner,) = workspace_with(Role.OWNER)
    issued = issue_key(owner)
    headers = {"Authorization": f"Bearer {issued.secret}"}
    assert httpx.get(f"{second_server}/api/v1/whoami", headers=headers).status_code == 200  # cached over there now
    mcp_headers = {**headers, "Accept": "application/json, text/event-stream"}
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    assert httpx.post(f"{second_server}/mcp", headers=mcp_headers, json=ping).status_code == 400  # past the key check

    api_keys.api_key_revoke(actor=owner, key=issued.key)  # autocommit here: the cache entry goes at once
    revoked_at = time.monotonic()

    status = None
    while time.monotonic() - revoked_at < 1.0:
        status = httpx.get(f"{second_server}/api/v1/whoami", headers=headers).status_code
        if status == 401:
            break
    assert status == 401
    assert httpx.post(f"{second_server}/mcp", headers=mcp_headers, json=ping).status_code == 401
