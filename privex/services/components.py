"""The plugins a knowledge base is built from — its chunker, embedding model and vector store — made in one place
for ingestion, retrieval, previews and evaluation alike.

One rule decides which chunker needs the embedding model: a chunker whose ``config_schema`` has an ``embed_model``
property (the semantic chunker) is given the knowledge base's model under that name. ``NotInstalled`` names the
missing plugin and what is installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from privex.extensions import state


@dataclass(frozen=True)
class Components:
    chunker: Any
    embed_model: Any
    store: Any


def needs_embedding(chunker_plugin) -> bool:
    """Whether a chunker splits by meaning and so needs the embedding model (as ``embed_model``)."""
    return "embed_model" in ((getattr(chunker_plugin, "config_schema", None) or {}).get("properties") or {})


def embedding_model(name: str, retrieval_config: dict | None = None):
    """The embedding model ``name`` with the knowledge base's model settings (``retrieval_config["embedding"]``)."""
    return state().plugins.embedding_models[name].create(**((retrieval_config or {}).get("embedding") or {}))


def chunker(strategy: str, config: dict | None, embed_model=None):
    """The chunker ``strategy`` with ``config``; one that needs the embedding model gets ``embed_model``, made on
    demand by calling it when it is a function (so previews of other chunkers load no model)."""
    plugin = state().plugins.chunkers[strategy]
    settings = dict(config or {})
    if needs_embedding(plugin):
        settings["embed_model"] = embed_model() if callable(embed_model) else embed_model
    return plugin.create(**settings)


def vector_store(knowledge_base):
    return state().plugins.vector_stores[knowledge_base.vector_store].create(knowledge_base,
                                                                             knowledge_base.embedding_dim)


def chunker_of(knowledge_base):
    """The knowledge base's chunker (its embedding model loaded only when the chunker needs it)."""
    return chunker(knowledge_base.chunking_strategy, knowledge_base.chunking_config,
                   lambda: embedding_model(knowledge_base.embedding_model, knowledge_base.retrieval_config))


def of(knowledge_base) -> Components:
    """The chunker, embedding model and vector store ``knowledge_base`` is configured with."""
    model = embedding_model(knowledge_base.embedding_model, knowledge_base.retrieval_config)
    return Components(chunker=chunker(knowledge_base.chunking_strategy, knowledge_base.chunking_config, model),
                      embed_model=model, store=vector_store(knowledge_base))


def searching(knowledge_base):
    """What a query needs: the embedding model and the vector store (no chunker is built)."""
    return (embedding_model(knowledge_base.embedding_model, knowledge_base.retrieval_config),
            vector_store(knowledge_base))


def vector_store_upkeep() -> int:
    """Each installed vector store's background work (its factory's optional ``upkeep()``, docs/plugins.md), run by
    the worker's housekeeping; how many items they handled in all."""
    done = 0
    for factory in state().plugins.vector_stores.values():
        upkeep = getattr(factory, "upkeep", None)
        if callable(upkeep):
            done += int(upkeep() or 0)
    return done
