"""Embeddings from any OpenAI-compatible server (OpenAI itself, vLLM, LM Studio, llama.cpp server, LiteLLM, ...).

``POST {base_url}/embeddings`` with ``{"model": ..., "input": [texts]}`` (plus ``"dimensions"`` when configured)
answers ``{"data": [{"index": i, "embedding": [...]}, ...], "usage": {...}}``; the items are put back in the order
of their ``index``, which must name each input exactly once.
"""

from __future__ import annotations

from typing import Any, ClassVar

from privex_llms.embeddings.embedding_model import EmbeddingModel
from privex_llms.embeddings.remote import RemoteEmbedding, remote_settings

NAME = "openai"
BASE_URL = "https://api.openai.com/v1"
MODEL_NAME = "text-embedding-3-small"
BATCH_SIZE = 32


class OpenAIEmbedding(RemoteEmbedding):
    provider: ClassVar[str] = NAME

    def __init__(self, *, base_url: str = BASE_URL, model: str = MODEL_NAME, batch_size: int = BATCH_SIZE,
                 **data: Any):
        super().__init__(base_url=base_url, model=model, batch_size=batch_size, **data)

    @classmethod
    def class_name(cls) -> str:
        return "PrivexOpenAIEmbedding"

    def _request(self, texts: list[str]) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {"model": self.model_name, "input": texts}
        if self.dimension is not None:
            body["dimensions"] = self.dimension
        return "embeddings", body

    def _vectors(self, answer: Any, count: int) -> list[Any]:
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, list):
            raise self.malformed(f'no "data" list in {str(answer)[:80]}')
        if not all(isinstance(item, dict) and "embedding" in item for item in data):
            raise self.malformed('an item of "data" has no "embedding"')
        indexes = [item.get("index") for item in data]
        if not all(type(index) is int for index in indexes) or sorted(indexes) != list(range(count)):
            raise self.malformed(f"indexes {indexes[:10]} do not name each of the {count} inputs once")
        return [item["embedding"] for item in sorted(data, key=lambda item: item["index"])]


MODEL = EmbeddingModel(
    name=NAME,
    dimension=None,
    description="Any embedding model on an OpenAI-compatible server",
    embedding_class=OpenAIEmbedding,
    properties=remote_settings(base_url=BASE_URL, model=MODEL_NAME, batch_size=BATCH_SIZE,
                               api_key="Bearer token; OpenAI needs one, many self-hosted servers do not"),
)
