"""The registry of tools and prompts, their executors, and the MCP endpoint (tools.mcp_server)."""
