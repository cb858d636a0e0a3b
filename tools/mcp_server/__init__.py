"""The MCP protocol endpoint: Streamable HTTP (`/mcp`), legacy HTTP+SSE (`/sse`, `/messages`) and WebSocket
(`/mcp/ws`), all over one protocol core."""
