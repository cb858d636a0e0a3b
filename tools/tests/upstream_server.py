"""A real MCP server for the federation tests: the official SDK's MCPServer under uvicorn, on a local port.

    python -m tools.tests.upstream_server --port 8765 [--transport sse]

Besides its tools, prompt and resource it answers `GET /seen` with what it observed: the Authorization headers its
MCP requests carried, the client ports they came from (so tests can check credentials and connection reuse), and
which tool calls were cancelled.
"""

import argparse
import asyncio

import uvicorn
from mcp.server.mcpserver import MCPServer
from starlette.requests import Request
from starlette.responses import JSONResponse

seen: dict[str, list[str]] = {"authorization": [], "peers": [], "cancelled": []}

server = MCPServer("upstream-fixture", version="1.0")


@server.tool(description="Add two integers.")
def add(a: int, b: int) -> int:
    return a + b


@server.tool(description="Wait, then answer.")
async def slow(seconds: float) -> str:
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        seen["cancelled"].append(f"slow({seconds})")
        raise
    return "done"


@server.tool(description="Always fails.")
def explode() -> str:
    raise RuntimeError("the fixture tool failed on purpose")


@server.prompt(description="Greets someone.")
def greet(name: str) -> str:
    return f"Please greet {name} warmly."


@server.resource("note://readme", name="readme", description="A short note.", mime_type="text/plain")
def readme() -> str:
    return "Hello from upstream."


@server.custom_route("/seen", methods=["GET"])
async def seen_view(request: Request) -> JSONResponse:
    return JSONResponse(seen)


def recording(app):
    async def wrapped(scope, receive, send):
        if scope["type"] == "http" and scope["path"] != "/seen":
            headers = dict(scope["headers"])
            seen["authorization"].append(headers.get(b"authorization", b"").decode())
            client = scope.get("client") or ("", 0)
            seen["peers"].append(f"{client[0]}:{client[1]}")
        return await app(scope, receive, send)

    return wrapped


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--transport", choices=["streamable-http", "sse"], default="streamable-http")
    options = parser.parse_args()
    app = server.sse_app() if options.transport == "sse" else server.streamable_http_app()
    uvicorn.run(recording(app), host="127.0.0.1", port=options.port, log_level="warning", lifespan="on")


if __name__ == "__main__":
    main()
