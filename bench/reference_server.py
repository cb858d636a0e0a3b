"""The reference of bench/mcp_throughput.py: the official SDK's own MCPServer with one trivial tool, stateless JSON
responses, on uvicorn, one process. Run by the benchmark: `python bench/reference_server.py --port N`."""

import argparse

import uvicorn
from mcp.server.mcpserver import MCPServer

server = MCPServer("reference", version="1.0")


@server.tool(description="Echo the text back.")
def echo(text: str) -> str:
    return text


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    options = parser.parse_args()
    app = server.streamable_http_app(stateless_http=True, json_response=True)
    uvicorn.run(app, host="127.0.0.1", port=options.port, log_level="warning")


if __name__ == "__main__":
    main()
