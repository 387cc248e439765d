"""Embeddings from an Ollama server: a local Ollama, or Secret AI's confidential endpoints, which speak the same
API behind ``Authorization: Bearer <api_key>``.

``POST {base_url}/api/embed`` with ``{"model": ..., "input": [texts]}`` (plus ``"dimensions"`` when configured:
Ollama truncates models that support it and ignores the field otherwise, and the vectors are checked either way)
answers ``{"embeddings": [[...], ...]}`` in the order of the inputs.
"""

from __future__ import annotations

from typing import Any, ClassVar

from privex_llms.embeddings.embedding_model import EmbeddingModel
from privex_llms.embeddings.remote import RemoteEmbedding, remote_settings

NAME = "ollama"
BASE_URL = "http://127.0.0.1:11434"
MODEL_NAME = "nomic-embed-text"
BATCH_SIZE = 32


class OllamaEmbedding(RemoteEmbedding):
    provider: ClassVar[str] = NAME

    def __init__(self, *, base_url: str = BASE_URL, model: str = MODEL_NAME, batch_size: int = BATCH_SIZE,
                 **data: Any):
        super().__init__(base_url=base_url, model=model, batch_size=batch_size, **data)

    @classmethod
    def class_name(cls) -> str:
        return "PrivexOllamaEmbedding"

    def _request(self, texts: list[str]) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {"model": self.model_name, "input": texts}
        if self.dimension is not None:
            body["dimensions"] = self.dimension
        return "api/embed", body

    def _vectors(self, answer: Any, count: int) -> list[Any]:
        if not isinstance(answer, dict) or not isinstance(answer.get("embeddings"), list):
            raise self.malformed(f'no "embeddings" list in {str(answer)[:80]}')
        return answer["embeddings"]


MODEL = EmbeddingModel(
    name=NAME,
    dimension=None,
    description="Any embedding model on an Ollama server, or on Secret AI's confidential Ollama endpoints",
    embedding_class=OllamaEmbedding,
    properties=remote_settings(base_url=BASE_URL, model=MODEL_NAME, batch_size=BATCH_SIZE,
                               api_key="Bearer token for servers that need one (Secret AI); none for a local Ollama"),
)
