"""``ThreadedEmbedding``: a LlamaIndex ``BaseEmbedding`` whose async methods run its sync ones in a worker thread,
so an event loop is never blocked by a forward pass or an HTTP call, and there is one code path to test."""

from __future__ import annotations

import asyncio

from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding


class ThreadedEmbedding(BaseEmbedding):
    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return await asyncio.to_thread(self._get_text_embeddings, texts)

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return await asyncio.to_thread(self._get_text_embedding, text)

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return await asyncio.to_thread(self._get_query_embedding, query)
