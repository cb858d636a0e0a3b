from tests.mcp.conftest import mcp_server  # noqa: F401 - the ASGI server fixture, for the MCP client test
