"""find_tools with the embedder: a request in other words than the tool's finds it; keywords still work; nothing
unrelated comes back."""

import pytest

from accounts.models import Role
from accounts.tests.factories import workspace_with
from tools.builtin_tools import find_tools
from tools.builtins import ToolContext
from tools.tests.test_registry import _tool

pytestmark = pytest.mark.django_db


def _names(workspace, query: str, top_k: int = 3) -> list[str]:
    result = find_tools(ToolContext(workspace_id=workspace.pk), {"query": query, "top_k": top_k})
    return [match["name"] for match in (result.structured or {})["tools"]]


def test_find_tools_understands_other_words():
    workspace, _members = workspace_with(Role.OWNER)
    _tool("weather_forecast", description="Forecast the weather for a city")
    _tool("send_invoice", description="Send an invoice to a customer")
    assert _names(workspace, "rain tomorrow in Berlin")[0] == "weather_forecast"  # no word in common
    assert _names(workspace, "usage quota")[0] == "get_usage"  # keywords and meaning agree
    assert _names(workspace, "weather in Paris") == ["weather_forecast"]
    assert _names(workspace, "zzzz") == []
