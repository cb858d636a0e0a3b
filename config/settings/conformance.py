"""The official MCP conformance suite's mode (tests/mcp/test_conformance.py): the test settings, plus anonymous
requests served as a fixture workspace with the suite's fixture tools, prompts and resources
(tools.mcp_server.conformance). The suite sends no credentials; nothing else may ever run with these settings."""

from config.settings.test import *  # noqa: F403

MCP_CONFORMANCE_WORKSPACE = "fixture"
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"]
