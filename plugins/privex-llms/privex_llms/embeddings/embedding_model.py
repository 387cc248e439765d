"""What the ``privex_embedding_models`` hook returns for each model: a named factory with its dimension and the
settings a knowledge base may store for it."""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass, field
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding

from privex_llms.settings import checked, schema_of

VERSION = importlib.metadata.version("privex-llms")


@dataclass(frozen=True)
class EmbeddingModel:
    """A named embedding model. ``create(**config)`` returns a LlamaIndex ``BaseEmbedding``.

    ``dimension`` is the length of its vectors, or None when it depends on the configuration (a remote model).
    ``local`` says it computes in this process, loading its weights on first use: servers then run it once as they
    start, so their first question does not wait for the load.
    ``config_schema`` (JSON Schema) lists every setting ``create`` takes with its default; an unknown setting or a
    value of the wrong type raises ValueError naming it. Secrets are marked ``writeOnly``.
    """

    name: str
    dimension: int | None
    description: str
    embedding_class: type[BaseEmbedding]
    properties: dict[str, dict[str, Any]]
    local: bool = False
    version: str = VERSION
    config_schema: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "config_schema", schema_of(self.properties))

    def create(self, **config: Any) -> BaseEmbedding:
        checked(f"embedding model {self.name!r}", self.properties, config)
        return self.embedding_class(**config)
