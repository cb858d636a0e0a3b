"""An OpenAI-compatible embeddings API (`EMBEDDING_PROVIDER=openai`): OpenAI itself, or any server that speaks its
`POST {base}/embeddings` (vLLM, text-embeddings-inference, LiteLLM, Ollama's OpenAI endpoint, Azure behind a proxy).

- Vectors are asked for at 384 dimensions (the chunk column is vector(384)); a model that answers with another size
  is refused with a message that says which models fit. They are L2-normalised here, whatever the server does.
- Requests carry at most `batch_size` texts (OpenAI takes 2,048 inputs and 300k tokens a request; our chunks are at
  most ~256 tokens). 429 and 5xx answers, time-outs and dropped connections are retried with exponential backoff
  (honouring Retry-After); anything else becomes `EmbedderUnavailable` with the API's own reason.
- The URL is the operator's (environment), never a tenant's, so the request does not go through the SSRF guard of
  `core.outbound`: a self-hosted embedding server usually sits on a private network or on localhost, which the guard
  refuses by design. Redirects are not followed (the key is only ever sent to the configured host).
- Chunk sizes are counted with the vendored MiniLM tokenizer: the API does not expose its tokenizer, and OpenAI's
  BPE files would have to be downloaded at run time. Word-piece and BPE counts of English differ by about a fifth,
  well inside the API's 8k-token input limit.
"""

from __future__ import annotations

import logging
import math
import random
import time
from typing import Any

import httpx
import numpy as np

from rag.embedding import EmbedderUnavailable, counting_tokenizer

logger = logging.getLogger(__name__)

MODEL_PREFIX = "openai:"
DIMENSIONS = 384
RETRYABLE = {408, 409, 429, 500, 502, 503, 504}
MAX_RETRY_AFTER = 30.0  # seconds; a longer Retry-After fails the batch (the ingestion task is retried later)


class OpenAIEmbedder:
    """One model of an OpenAI-compatible API. Thread-safe: httpx clients may be shared between threads."""

    dimensions = DIMENSIONS

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        model: str,
        timeout: float = 30.0,
        batch_size: int = 128,
        max_retries: int = 4,
        backoff: float = 0.5,
    ) -> None:
        if not model:
            raise EmbedderUnavailable("EMBEDDING_MODEL is empty: name the API's embedding model.")
        self.model = MODEL_PREFIX + model
        self.api_model = model
        self.url = base_url.rstrip("/") + "/embeddings"
        self.batch_size = max(1, min(batch_size, 2048))
        self.max_retries = max_retries
        self.backoff = backoff
        self.timeout = timeout
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.client = httpx.Client(
            headers=headers, timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)), follow_redirects=False
        )
        self.counter = counting_tokenizer()

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        rows = [self._batch(texts[start : start + self.batch_size]) for start in range(0, len(texts), self.batch_size)]
        return np.concatenate(rows)

    def token_count(self, text: str) -> int:
        return len(self.counter.encode(text, add_special_tokens=False).ids)

    def _batch(self, texts: list[str]) -> np.ndarray:
        # OpenAI refuses an empty string as input; a blank embeds like any whitespace.
        body = {
            "model": self.api_model,
            "input": [text or " " for text in texts],
            "dimensions": self.dimensions,
            "encoding_format": "float",
        }
        payload = self._post(body)
        return self._vectors(payload, len(texts))

    def _post(self, body: dict[str, Any]) -> Any:
        attempt = 0
        while True:
            wait: float | None = None
            try:
                response = self.client.post(self.url, json=body)
            except httpx.TimeoutException:
                failure = f"did not answer within {self.timeout:g} s"
            except httpx.TransportError as error:
                failure = f"could not be reached ({type(error).__name__}: {error})"
            else:
                if response.status_code == 200:
                    try:
                        return response.json()
                    except ValueError as error:
                        raise EmbedderUnavailable(
                            f"The embedding API at {self.url} answered with something that is not JSON."
                        ) from error
                if response.status_code not in RETRYABLE:
                    raise EmbedderUnavailable(self._refusal(response))
                failure = f"answered {response.status_code} ({_reason(response)})"
                wait = _retry_after(response)
            if attempt >= self.max_retries or (wait is not None and wait > MAX_RETRY_AFTER):
                raise EmbedderUnavailable(
                    f"The embedding API at {self.url} {failure}, {attempt + 1} times; try again later."
                )
            delay = wait if wait is not None else self.backoff * 2**attempt * (1 + random.random() / 10)  # noqa: S311
            logger.warning("embedding API %s %s; retrying in %.1f s", self.url, failure, delay)
            time.sleep(delay)
            attempt += 1

    def _refusal(self, response: httpx.Response) -> str:
        reason = _reason(response)
        if response.status_code in (401, 403):
            return (
                f"The embedding API at {self.url} refused the key ({response.status_code}: {reason}). "
                "Check EMBEDDING_API_KEY."
            )
        if response.status_code == 404:
            return (
                f"The embedding API has no {self.url} or no model {self.api_model} (404: {reason}). "
                "Check EMBEDDING_API_URL (the base URL, e.g. https://api.openai.com/v1) and EMBEDDING_MODEL."
            )
        return f"The embedding API at {self.url} refused the request ({response.status_code}: {reason})."

    def _vectors(self, payload: Any, expected: int) -> np.ndarray:
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, list) or len(data) != expected:
            got = len(data) if isinstance(data, list) else "no"
            raise EmbedderUnavailable(
                f"The embedding API at {self.url} returned {got} vectors for {expected} texts; it does not speak the "
                "OpenAI embeddings API."
            )
        ordered = sorted(data, key=lambda item: item.get("index", 0) if isinstance(item, dict) else 0)
        rows = []
        for item in ordered:
            vector = item.get("embedding") if isinstance(item, dict) else None
            if not isinstance(vector, list):
                raise EmbedderUnavailable(
                    f"The embedding API at {self.url} did not return float vectors (encoding_format=float)."
                )
            if len(vector) != self.dimensions:
                raise EmbedderUnavailable(
                    f"The embedding model {self.api_model} returned {len(vector)}-dimensional vectors; Toolport stores "
                    f"{self.dimensions}. Choose a model that accepts the dimensions parameter (OpenAI's "
                    "text-embedding-3-small or text-embedding-3-large) or one that makes 384-dimensional vectors."
                )
            rows.append(vector)
        try:
            vectors = np.asarray(rows, dtype=np.float32)
        except (TypeError, ValueError) as error:
            raise EmbedderUnavailable(
                f"The embedding API at {self.url} returned vectors that are not numbers."
            ) from error
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        if not np.all(np.isfinite(vectors)) or np.any(norms == 0):
            raise EmbedderUnavailable(f"The embedding API at {self.url} returned empty or non-finite vectors.")
        return (vectors / norms).astype(np.float32)


def _reason(response: httpx.Response) -> str:
    """The API's own error message (OpenAI: {"error": {"message": ...}}), short."""
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase or "no reason given"
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else error
    return str(message or response.reason_phrase or "no reason given")[:200]


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None
