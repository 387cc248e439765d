"""What the ``privex_embedding_models`` hook returns for each model: a named factory with its dimension and the
settings a knowledge base may store for it."""

from __future__ import annotations

import importlib.metadata
import re
from dataclasses import dataclass, field
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding

VERSION = importlib.metadata.version("privex-llms")


def setting(kind: str, default: Any, description: str, **schema: Any) -> dict[str, Any]:
    """One property of a ``config_schema``: a JSON Schema type (or list of types), its default and what it does."""
    return {"type": kind, "default": default, "description": description, **schema}


@dataclass(frozen=True)
class EmbeddingModel:
    """A named embedding model. ``create(**config)`` returns a LlamaIndex ``BaseEmbedding``.

    ``dimension`` is the length of its vectors, or None when it depends on the configuration (a remote model).
    ``config_schema`` (JSON Schema) lists every setting ``create`` takes with its default; an unknown setting or a
    value of the wrong type raises ValueError naming it. Secrets are marked ``writeOnly``.
    """

    name: str
    dimension: int | None
    description: str
    embedding_class: type[BaseEmbedding]
    properties: dict[str, dict[str, Any]]
    version: str = VERSION
    config_schema: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        schema = {"type": "object", "properties": self.properties, "additionalProperties": False}
        object.__setattr__(self, "config_schema", schema)

    def create(self, **config: Any) -> BaseEmbedding:
        unknown = sorted(set(config) - set(self.properties))
        if unknown:
            raise ValueError(f"embedding model {self.name!r} has no setting {', '.join(map(repr, unknown))} "
                             f"(settings: {', '.join(self.properties) or 'none'})")
        for key, value in config.items():
            check(self.name, key, value, self.properties[key])
        return self.embedding_class(**config)


_TYPES = {"string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,), "null": (type(None),)}


def check(model: str, key: str, value: Any, prop: dict[str, Any]) -> None:
    """Raise ValueError naming ``key`` when ``value`` is not of the property's type or out of its bounds."""
    kinds = prop["type"] if isinstance(prop["type"], list) else [prop["type"]]
    fits = any(isinstance(value, _TYPES[kind]) and not (isinstance(value, bool) and kind in ("integer", "number"))
               for kind in kinds)
    if not fits:
        wanted = " or ".join("a whole number" if kind == "integer" else "a number" if kind == "number"
                             else "empty" if kind == "null" else f"a {kind}" for kind in kinds)
        raise ValueError(f"embedding model {model!r}: {key} must be {wanted}, got {value!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "exclusiveMinimum" in prop and not value > prop["exclusiveMinimum"]:
            raise ValueError(f"embedding model {model!r}: {key} must be more than {prop['exclusiveMinimum']}, "
                             f"got {value!r}")
        if "minimum" in prop and not value >= prop["minimum"]:
            raise ValueError(f"embedding model {model!r}: {key} must be at least {prop['minimum']}, got {value!r}")
        if "maximum" in prop and not value <= prop["maximum"]:
            raise ValueError(f"embedding model {model!r}: {key} must be at most {prop['maximum']}, got {value!r}")
    if isinstance(value, str) and prop.get("minLength") and len(value) < prop["minLength"]:
        raise ValueError(f"embedding model {model!r}: {key} must not be empty")
    if isinstance(value, str) and "pattern" in prop and not re.search(prop["pattern"], value):
        wanted = prop.get("patternDescription") or f"match {prop['pattern']}"
        raise ValueError(f"embedding model {model!r}: {key} must {wanted}, got {value!r}")
