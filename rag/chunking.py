"""Chunks for embedding: semchunk splits at the most meaningful boundary that keeps each piece within the model's
window, counted with the embedder's own tokenizer, with an overlap so a passage cut at a boundary is still found
whole in one of its neighbours."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import semchunk

from rag.embedding import Embedder
from rag.extraction import Extracted

CHUNK_TOKENS = 224  # within the 256 word pieces MiniLM reads, with room for its special tokens
OVERLAP_TOKENS = 32


@dataclass(frozen=True)
class Piece:
    text: str
    start: int
    end: int
    heading_path: str
    token_count: int


def chunks_of(extracted: Extracted, embedder: Embedder) -> list[Piece]:
    chunker = semchunk.chunkerify(embedder.token_count, CHUNK_TOKENS)
    texts, offsets = cast(
        "tuple[list[str], list[tuple[int, int]]]", chunker(extracted.text, offsets=True, overlap=OVERLAP_TOKENS)
    )
    pieces = []
    for text, (start, end) in zip(texts, offsets, strict=True):
        if not text.strip():
            continue
        pieces.append(
            Piece(
                text=text,
                start=start,
                end=end,
                # the section at the chunk's middle: where most of it is, also when it begins with a heading
                heading_path=extracted.section_at((start + end) // 2)[:500],
                token_count=embedder.token_count(text),
            )
        )
    return pieces
