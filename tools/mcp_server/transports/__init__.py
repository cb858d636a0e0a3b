"""The MCP transports. Each only frames messages: it reads a message off its wire, hands it to the pipeline
(`tools.mcp_server.pipeline`), and writes what comes back as its protocol says."""
