"""The reference of bench/mcp_throughput.py, and its upstream MCP server: the official SDK's own MCPServer with one
trivial tool (`echo`), on uvicorn, one process, in the mode of the Toolport path it is compared with.

    python bench/reference_server.py --port N --mode stateless|sessionful|sse [--record]

- stateless: `streamable_http_app(stateless_http=True, json_response=True)` at /mcp (a 2026-07-28 request goes to
  the SDK's single-exchange entry, as it would on any of its Streamable HTTP apps);
- sessionful: `streamable_http_app(stateless_http=False, json_response=True)` at /mcp, its own sessions;
- sse: `sse_app()`, the legacy transport at /sse and /messages/.

`--record` keeps the first `tools/call` request the server receives (its headers and body) and serves it at
`GET /first-tool-call`: the benchmark replays exactly what Toolport sent upstream to time the tool on its own.
"""

import argparse
import json
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer

server = MCPServer("reference", version="1.0")


@server.tool(description="Echo the text back.")
def echo(text: str) -> str:
    return text


class FirstToolCall:
    """ASGI middleware that keeps the first tools/call request, then passes every request straight through."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.recorded: dict[str, Any] | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
        elif scope["path"] == "/first-tool-call":
            body = json.dumps(self.recorded).encode()
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
            )
            await send({"type": "http.response.body", "body": body})
        elif self.recorded is not None or scope["method"] != "POST":
            await self.app(scope, receive, send)
        else:
            chunks = []
            while True:
                message = await receive()
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    break
            body = b"".join(chunks)
            if b'"tools/call"' in body:
                self.recorded = {
                    "path": scope["path"] + (f"?{scope['query_string'].decode()}" if scope["query_string"] else ""),
                    "headers": {name.decode(): value.decode() for name, value in scope["headers"]},
                    "body": body.decode(),
                }
            replayed = False

            async def replay() -> dict[str, Any]:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return dict(await receive())

            await self.app(scope, replay, send)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", choices=["stateless", "sessionful", "sse"], default="stateless")
    parser.add_argument("--record", action="store_true", help="serve the first tools/call at GET /first-tool-call")
    options = parser.parse_args()
    if options.mode == "sse":
        app: Any = server.sse_app()
    else:
        app = server.streamable_http_app(stateless_http=options.mode == "stateless", json_response=True)
    if options.record:
        app = FirstToolCall(app)
    # uvloop and httptools (uvicorn's defaults when installed) and no access log, as Toolport's uvicorn runs
    uvicorn.run(app, host="127.0.0.1", port=options.port, log_level="warning", lifespan="on", access_log=False)


if __name__ == "__main__":
    main()
