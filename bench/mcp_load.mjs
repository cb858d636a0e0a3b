// The load generator of bench/mcp_throughput.py for the MCP paths wrk cannot drive: the legacy HTTP+SSE transport
// (the answer to a POST arrives on another connection, the session's stream) and WebSocket; and, so one tool measures
// every path the same way, the open-loop and one-call-at-a-time runs of the Streamable HTTP paths too.
//
//   node bench/mcp_load.mjs '<JSON options>'      prints one JSON line of results
//
// Options: mode ("http" | "sse" | "ws"); url (http: the POST target; sse: the stream to GET; ws: the ws:// URL);
// headers (sent on every request, the stream and the WebSocket handshake); body (http: the request); call (sse, ws:
// {method, params}); protocolVersion (sse, ws: of the session's initialize); connections (sessions, each with one
// call in flight at a time); warmup and seconds (closed loop: calls back to back); count (closed loop: stop after
// that many calls); rate (open loop: calls per second on a fixed schedule); sample (return the first answer's text);
// latencies (return every latency). Every call gets its own JSON-RPC id (http: in place of the body's). It prints
// `window-start` and `window-end` as the measured window opens and closes, then the results.
//
// Latency runs from a call's start to its answer: for sse the response event on the stream, not the POST's 202. In
// the open loop a call starts at its scheduled time, so one that waits for a busy session counts the wait; when a
// session sat idle until the slot, the timer's own lateness (Node's timers have millisecond grain) is not counted.
// Every answer is parsed and checked: an error response, or a tool result with isError, counts as an error.

import http from "node:http";
import net from "node:net";
import { performance } from "node:perf_hooks";
import WebSocket from "ws";

const options = JSON.parse(process.argv[2]);
const mode = options.mode;
const connections = options.connections ?? 16;
const warmup = (options.warmup ?? 0) * 1000;
const seconds = options.seconds ?? 0;
const rate = options.rate ?? 0;
const count = options.count ?? 0;
const headers = options.headers ?? {};
const target = new URL(options.url);

const latencies = [];
let errors = 0;
let firstError = "";
let sample = null;
let completed = 0;
let measuring = false;
let stopping = false;
let windowStart = 0;
let windowEnd = 0;
let cpuStart = null;
let cpuUsed = null;

function fail(text) {
  errors += 1;
  if (!firstError) firstError = String(text).slice(0, 300);
}

// --- HTTP/1.1 on a raw keep-alive socket: one request at a time, the response parsed by hand -----------------------

class HttpConnection {
  constructor(host, port) {
    this.host = host;
    this.port = port;
    this.pending = null;
    this.connect();
  }

  connect() {
    this.buffer = Buffer.alloc(0);
    this.head = null;
    this.socket = net.connect({ host: this.host, port: this.port });
    this.socket.setNoDelay(true);
    this.socket.on("data", (data) => {
      this.buffer = this.buffer.length ? Buffer.concat([this.buffer, data]) : data;
      this.parse();
    });
    this.socket.on("error", () => {});
    this.socket.on("close", () => {
      const pending = this.pending;
      this.pending = null;
      if (!stopping) this.connect();
      if (pending) pending(0, "connection closed");
    });
  }

  request(bytes, callback) {
    this.pending = callback;
    this.socket.write(bytes);
  }

  parse() {
    for (;;) {
      if (this.head === null) {
        const end = this.buffer.indexOf("\r\n\r\n");
        if (end < 0) return;
        const text = this.buffer.toString("latin1", 0, end);
        const length = /\r\ncontent-length:\s*(\d+)/i.exec(text);
        this.head = {
          status: Number(text.slice(9, 12)),
          length: length ? Number(length[1]) : -1,
          chunked: /\r\ntransfer-encoding:\s*chunked/i.test(text),
        };
        this.buffer = this.buffer.subarray(end + 4);
      }
      let body;
      if (this.head.chunked) {
        const parts = [];
        let position = 0;
        let done = false;
        for (;;) {
          const line = this.buffer.indexOf("\r\n", position);
          if (line < 0) break;
          const size = parseInt(this.buffer.toString("latin1", position, line), 16);
          if (size === 0) {
            if (this.buffer.length < line + 4) break;
            position = line + 4;
            done = true;
            break;
          }
          if (this.buffer.length < line + 2 + size + 2) break;
          parts.push(this.buffer.subarray(line + 2, line + 2 + size));
          position = line + 2 + size + 2;
        }
        if (!done) return;
        body = Buffer.concat(parts).toString();
        this.buffer = this.buffer.subarray(position);
      } else {
        const length = Math.max(this.head.length, 0);
        if (this.buffer.length < length) return;
        body = this.buffer.toString("utf8", 0, length);
        this.buffer = this.buffer.subarray(length);
      }
      const status = this.head.status;
      this.head = null;
      const pending = this.pending;
      this.pending = null;
      if (pending) pending(status, body);
    }
  }
}

function requestBytes(path, body, extra) {
  const lines = [`POST ${path} HTTP/1.1`, `Host: ${target.host}`, `Content-Length: ${Buffer.byteLength(body)}`];
  for (const [name, value] of Object.entries({ ...headers, ...extra })) lines.push(`${name}: ${value}`);
  return Buffer.from(lines.join("\r\n") + "\r\n\r\n" + body);
}

function checkAnswer(message) {
  if (message.error !== undefined) return JSON.stringify(message.error);
  if (message.result === undefined) return `no result: ${JSON.stringify(message).slice(0, 200)}`;
  if (message.result.isError === true) return JSON.stringify(message.result).slice(0, 300);
  return null;
}

// --- Sessions: each runs one call at a time; `call(done)` calls done(errorText | null, answerText) ------------------

// Every call carries its own JSON-RPC id (one counter for all connections): a session's requests in flight at once
// must not share an id, or a server may route one's answer to another.
const idPattern = /^(\{"jsonrpc":"2\.0","id":)\d+(,[\s\S]*)$/;
let nextHttpId = 1;

function httpSession() {
  const connection = new HttpConnection(target.hostname, Number(target.port));
  const path = target.pathname + target.search;
  const parts = idPattern.exec(options.body);
  const fixed = parts ? null : requestBytes(path, options.body, { "Content-Type": "application/json" });
  return Promise.resolve({
    call(done) {
      const bytes =
        fixed ?? requestBytes(path, parts[1] + nextHttpId++ + parts[2], { "Content-Type": "application/json" });
      connection.request(bytes, (status, body) => {
        if (status !== 200) return done(`HTTP ${status} ${body.slice(0, 200)}`, body);
        let message;
        try {
          message = JSON.parse(body);
        } catch {
          return done(`not JSON: ${body.slice(0, 200)}`, body);
        }
        done(checkAnswer(message), body);
      });
    },
  });
}

function message(id, method, params) {
  return JSON.stringify({ jsonrpc: "2.0", id, method, params });
}

const callTail = options.call ? JSON.stringify(options.call).slice(1) : "";
const initializeParams = {
  protocolVersion: options.protocolVersion ?? "2025-06-18",
  capabilities: {},
  clientInfo: { name: "mcp_load", version: "1" },
};
const INITIALIZED = JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" });

// A session of the legacy transport: GET the stream, read where to post, then post each message there; answers come
// as `message` events on the stream, matched by id.
function sseSession() {
  return new Promise((resolve, reject) => {
    const waiting = new Map();
    let post = null;
    let postPath = null;
    let text = "";
    const stream = http.get(
      target,
      { headers: { ...headers, Accept: "text/event-stream" }, agent: false },
      (response) => {
        if (response.statusCode !== 200) {
          reject(new Error(`GET ${target.pathname}: HTTP ${response.statusCode}`));
          response.resume();
          return;
        }
        response.setEncoding("utf8");
        response.on("data", (chunk) => {
          text += chunk;
          for (;;) {
            const lf = text.indexOf("\n\n");
            const crlf = text.indexOf("\r\n\r\n");
            const end = lf < 0 ? crlf : crlf < 0 ? lf : Math.min(lf, crlf);
            if (end < 0) break;
            const event = text.slice(0, end);
            text = text.slice(end + (end === crlf ? 4 : 2));
            let name = "message";
            let data = "";
            for (const line of event.split(/\r?\n/)) {
              if (line.startsWith("event:")) name = line.slice(6).trim();
              else if (line.startsWith("data:")) data += (data ? "\n" : "") + line.slice(5).replace(/^ /, "");
            }
            if (name === "endpoint" && postPath === null) {
              postPath = data;
              post = new HttpConnection(target.hostname, Number(target.port));
              start();
            } else if (name === "message" && data) {
              let parsed;
              try {
                parsed = JSON.parse(data);
              } catch {
                fail(`not JSON on the stream: ${data.slice(0, 200)}`);
                continue;
              }
              const handler = waiting.get(parsed.id);
              if (handler !== undefined) {
                waiting.delete(parsed.id);
                handler(parsed, data);
              }
            }
          }
        });
        response.on("close", () => {
          if (!stopping) fail("the SSE stream closed");
        });
      },
    );
    stream.on("error", (error) => reject(error));

    // The POST's 202 and the answer on the stream may come in either order; the call is done when the answer is
    // seen, and the session's POST connection is free again once both are in.
    function send(id, body, onAnswer) {
      let answered = null;
      let accepted = id === null;
      const bytes = requestBytes(postPath, body, { "Content-Type": "application/json" });
      const finish = () => {
        if (answered !== null && accepted) onAnswer(...answered);
      };
      if (id !== null) {
        waiting.set(id, (parsed, raw) => {
          answered = [checkAnswer(parsed), raw, performance.now()];
          finish();
        });
      }
      post.request(bytes, (status, responseBody) => {
        if (status !== 202 && status !== 200) {
          if (id !== null) waiting.delete(id);
          answered = [`POST: HTTP ${status} ${responseBody.slice(0, 200)}`, responseBody, performance.now()];
          accepted = true;
          finish();
          return;
        }
        accepted = true;
        if (id === null) onAnswer(null, "", performance.now());
        else finish();
      });
    }

    let nextId = 2;
    function start() {
      send(1, message(1, "initialize", initializeParams), (error) => {
        if (error) return reject(new Error(`initialize: ${error}`));
        send(null, INITIALIZED, () =>
          resolve({
            call(done) {
              const id = nextId++;
              send(id, `{"jsonrpc":"2.0","id":${id},${callTail}`, (error, raw, at) => done(error, raw, at));
            },
            close() {
              stream.destroy();
              post.socket.destroy();
            },
          }),
        );
      });
    }
  });
}

function wsSession() {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(target, ["mcp"], { headers, perMessageDeflate: false });
    const waiting = new Map();
    let nextId = 2;
    socket.on("error", (error) => reject(error));
    socket.on("unexpected-response", (_request, response) =>
      reject(new Error(`WebSocket handshake: HTTP ${response.statusCode}`)),
    );
    socket.on("close", (code, reason) => {
      if (!stopping) fail(`WebSocket closed: ${code} ${reason}`);
      reject(new Error(`WebSocket closed: ${code} ${reason}`));
    });
    socket.on("message", (data) => {
      const raw = data.toString();
      let parsed;
      try {
        parsed = JSON.parse(raw);
      } catch {
        fail(`not JSON: ${raw.slice(0, 200)}`);
        return;
      }
      const handler = waiting.get(parsed.id);
      if (handler !== undefined) {
        waiting.delete(parsed.id);
        handler(parsed, raw);
      }
    });
    socket.on("open", () => {
      waiting.set(1, (parsed) => {
        const error = checkAnswer(parsed);
        if (error) return reject(new Error(`initialize: ${error}`));
        socket.send(INITIALIZED);
        resolve({
          call(done) {
            const id = nextId++;
            waiting.set(id, (answer, raw) => done(checkAnswer(answer), raw));
            socket.send(`{"jsonrpc":"2.0","id":${id},${callTail}`);
          },
          close() {
            socket.terminate();
          },
        });
      });
      socket.send(message(1, "initialize", initializeParams));
    });
  });
}

// --- The runs -------------------------------------------------------------------------------------------------------

function record(started, error, raw, at) {
  const finished = at ?? performance.now();
  if (sample === null && options.sample) sample = raw;
  if (!measuring) return;
  if (error) fail(error);
  else latencies.push(finished - started);
  completed += 1;
}

function closedLoop(session) {
  return new Promise((resolve) => {
    const next = () => {
      if (stopping || (count && completed >= count)) return resolve();
      const started = performance.now();
      session.call((error, raw, at) => {
        if (measuring && (!count || completed < count)) record(started, error, raw, at);
        else if (sample === null && options.sample) sample = raw;
        next();
      });
    };
    next();
  });
}

function openLoop(session, schedule) {
  return new Promise((resolve) => {
    const next = () => {
      if (stopping) return resolve();
      const slot = schedule.next++;
      if (slot >= schedule.total) return resolve();
      const scheduled = schedule.start + (slot * 1000) / rate;
      const go = (waited) => {
        const sent = performance.now();
        session.call((error, raw, at) => {
          record(waited ? sent : scheduled, error, raw, at);
          next();
        });
      };
      const delay = scheduled - performance.now();
      if (delay > 0) setTimeout(() => go(true), delay);
      else go(false);
    };
    next();
  });
}

// The measured window's ends, as they happen: the benchmark reads the servers' CPU time at these marks.
const mark = (name) => process.stdout.write(`${name}\n`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function main() {
  const open = { http: httpSession, sse: sseSession, ws: wsSession }[mode];
  const setupStarted = performance.now();
  const sessions = [];
  for (let index = 0; index < connections; index += 16) {
    const batch = [];
    for (let inner = index; inner < Math.min(index + 16, connections); inner += 1) batch.push(open());
    sessions.push(...(await Promise.all(batch)));
  }
  const setupSeconds = (performance.now() - setupStarted) / 1000;

  let runs;
  if (rate) {
    measuring = true;
    const schedule = { next: 0, total: Math.round(rate * seconds), start: performance.now() + 200 };
    windowStart = schedule.start;
    mark("window-start");
    cpuStart = process.cpuUsage();
    const grace = setTimeout(() => {
      stopping = true;
    }, (seconds + 30) * 1000);
    runs = sessions.map((session) => openLoop(session, schedule));
    await Promise.all(runs);
    clearTimeout(grace);
    windowEnd = performance.now();
    cpuUsed = process.cpuUsage(cpuStart);
    mark("window-end");
    const unfinished = schedule.total - completed;
    if (unfinished > 0) fail(`${unfinished} scheduled calls not answered within ${seconds + 30} s`);
    errors += Math.max(unfinished - 1, 0);
  } else {
    runs = sessions.map((session) => closedLoop(session));
    if (warmup) await sleep(warmup);
    measuring = true;
    windowStart = performance.now();
    mark("window-start");
    cpuStart = process.cpuUsage();
    if (seconds) {
      await sleep(seconds * 1000);
      stopping = true;
      windowEnd = performance.now();
      cpuUsed = process.cpuUsage(cpuStart);
      mark("window-end");
      measuring = false;
      await Promise.race([Promise.all(runs), sleep(10000)]);
    } else {
      await Promise.all(runs);
      windowEnd = performance.now();
      cpuUsed = process.cpuUsage(cpuStart);
      mark("window-end");
    }
  }
  stopping = true;
  for (const session of sessions) session.close?.();

  latencies.sort((a, b) => a - b);
  const at = (share) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * share))] : 0);
  const window = (windowEnd - windowStart) / 1000;
  process.stdout.write(
    JSON.stringify({
      completed,
      errors,
      first_error: firstError,
      seconds: window,
      rps: completed / window,
      p50: at(0.5),
      p95: at(0.95),
      p99: at(0.99),
      cpu_seconds: (cpuUsed.user + cpuUsed.system) / 1e6,
      setup_seconds: setupSeconds,
      sample,
      latencies: options.latencies ? latencies : undefined,
    }) + "\n",
  );
  process.exit(0);
}

main().catch((error) => {
  process.stdout.write(JSON.stringify({ fatal: String(error?.stack ?? error) }) + "\n");
  process.exit(1);
});
