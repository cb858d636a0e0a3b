// The trivial server bench/mcp_throughput.py measures its load generators' ceiling against: it speaks just enough of
// each MCP transport to answer every call at once (Streamable HTTP POST, legacy HTTP+SSE, WebSocket), so a run
// against it shows how many calls per second the generator itself can drive on this machine.
//
//   node bench/ceiling_server.mjs <port>

import http from "node:http";
import { WebSocketServer } from "ws";

const port = Number(process.argv[2]);
const streams = new Map();
let nextSession = 0;

function answer(text) {
  const request = JSON.parse(text);
  if (request.id === undefined) return null;
  const result =
    request.method === "initialize"
      ? { protocolVersion: request.params.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: "ceiling", version: "1" } }
      : { content: [{ type: "text", text: request.params?.arguments?.text ?? "" }], isError: false };
  return JSON.stringify({ jsonrpc: "2.0", id: request.id, result });
}

function readBody(request, callback) {
  const parts = [];
  request.on("data", (part) => parts.push(part));
  request.on("end", () => callback(Buffer.concat(parts).toString()));
}

const server = http.createServer((request, response) => {
  const url = new URL(request.url, "http://localhost");
  if (request.method === "GET" && url.pathname === "/sse") {
    const session = String(nextSession++);
    response.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-store" });
    response.write(`event: endpoint\ndata: /messages?session_id=${session}\n\n`);
    streams.set(session, response);
    request.on("close", () => streams.delete(session));
    return;
  }
  if (request.method === "POST" && url.pathname === "/messages") {
    readBody(request, (body) => {
      const stream = streams.get(url.searchParams.get("session_id"));
      response.writeHead(stream ? 202 : 404, { "Content-Type": "text/plain", "Content-Length": stream ? 8 : 0 });
      response.end(stream ? "Accepted" : "");
      const reply = stream && answer(body);
      if (reply) stream.write(`event: message\ndata: ${reply}\n\n`);
    });
    return;
  }
  if (request.method === "POST") {
    readBody(request, (body) => {
      const reply = answer(body) ?? "";
      response.writeHead(reply ? 200 : 202, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(reply) });
      response.end(reply);
    });
    return;
  }
  response.writeHead(404, { "Content-Length": 0 });
  response.end();
});

const sockets = new WebSocketServer({ server, path: "/mcp/ws", perMessageDeflate: false, handleProtocols: () => "mcp" });
sockets.on("connection", (socket) => {
  socket.on("message", (data) => {
    const reply = answer(data.toString());
    if (reply) socket.send(reply);
  });
});

server.keepAliveTimeout = 120_000;
server.listen(port, "127.0.0.1");
