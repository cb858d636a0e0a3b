"""`find_tools` by meaning: the query's embedding against each visible tool's (its name, title and description),
with the active embedding model. Tool vectors are kept in memory by (model, text): a registry change re-embeds only
the tools it changed. Registered with the tool registry at start-up (rag registers into tools, never the reverse)."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import numpy as np

from rag.reembedding import active_embedder

CACHE_MAX = 4096
_vectors: dict[tuple[str, str], np.ndarray] = {}
_lock = threading.Lock()


def _text(tool: Any) -> str:
    return ". ".join(part for part in (tool.name.replace("_", " "), tool.title, tool.description) if part)


def tools_by_meaning(query: str, tools: list[Any]) -> list[tuple[float, Any]]:
    """Each tool with the cosine similarity of its text to the query (vectors are L2-normalised)."""
    model = active_embedder()
    texts = [_text(tool) for tool in tools]
    keys = [(model.model, hashlib.sha256(text.encode()).hexdigest()) for text in texts]
    with _lock:
        missing = [index for index, key in enumerate(keys) if key not in _vectors]
    vectors = model.embed([query, *(texts[index] for index in missing)])
    with _lock:
        if len(_vectors) + len(missing) > CACHE_MAX:
            _vectors.clear()
        for index, vector in zip(missing, vectors[1:], strict=True):
            _vectors[keys[index]] = np.asarray(vector, dtype=np.float32)
        matrix = np.stack([_vectors[key] for key in keys])
    similarities = matrix @ np.asarray(vectors[0], dtype=np.float32)
    return [(float(score), tool) for score, tool in zip(similarities, tools, strict=True)]
