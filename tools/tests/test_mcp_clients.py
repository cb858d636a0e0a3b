"""The API keys page tells a user where the MCP endpoint is and how to configure each client, without ever
showing a stored key again."""

import json
import re

import pytest
from django.urls import reverse

from accounts.models import Role
from accounts.tests.factories import issue_key, workspace_with
from tools.mcp_server.clients import client_configs

pytestmark = pytest.mark.django_db


def test_the_keys_page_shows_the_endpoint_and_configs_for_a_chosen_key_but_not_its_secret(client):
    workspace, (owner,) = workspace_with(Role.OWNER)
    issued = issue_key(owner, name="Laptop")
    client.force_login(owner.user)

    page = client.get(reverse("console:api_keys", args=[workspace.pk])).content.decode()

    assert "Connect an MCP client" in page
    assert '<code id="mcp-endpoint">http://testserver/mcp</code>' in page
    found = re.search(r'<script id="mcp-key-choices" type="application/json">(.*?)</script>', page)
    assert found is not None
    choices = json.loads(found[1])
    assert choices == [{"label": f"Laptop ({issued.key.prefix}…)", "key": f"{issued.key.prefix}_<REST_OF_THIS_KEY>"}]
    assert issued.secret not in page


def test_each_client_configuration_is_valid_and_carries_the_endpoint_and_key():
    configs = {config.slug: config for config in client_configs("https://toolport.example/mcp", "tp_live_x_y")}
    cursor = json.loads(configs["cursor"].text)["mcpServers"]["toolport"]
    assert cursor == {"url": "https://toolport.example/mcp", "headers": {"Authorization": "Bearer tp_live_x_y"}}
    vscode = json.loads(configs["vscode"].text)["servers"]["toolport"]
    assert (vscode["type"], vscode["url"]) == ("http", "https://toolport.example/mcp")
    claude = json.loads(configs["claude"].text)["mcpServers"]["toolport"]
    assert claude["args"][-1] == "Authorization:Bearer tp_live_x_y"
    compile(configs["python"].text, "client.py", "exec")  # the snippet is valid Python
    assert 'streamable_http_client("https://toolport.example/mcp"' in configs["python"].text
