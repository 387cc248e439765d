"""Retrieval: the chunks of a knowledge base that best answer a query, each with what an answer needs to cite it.

The query is embedded with the model the knowledge base's chunks were embedded with, then searched in the
knowledge base's vector store in one of three modes: ``vector``, ``keyword`` or ``hybrid`` (the default).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import sqlalchemy as sa
from llama_index.core.vector_stores.types import VectorStoreQuery, VectorStoreQueryMode

from privex.extensions import db
from privex.models import Document, KnowledgeBase
from privex.services import components
from privex.services.filters import parse_filters

MODES = {"vector": VectorStoreQueryMode.DEFAULT, "keyword": VectorStoreQueryMode.TEXT_SEARCH,
         "hybrid": VectorStoreQueryMode.HYBRID}
MAX_TOP_K = 50  # hits one query returns at most (the API's `top_k` cap, and a knowledge base's default's)
# Metadata that says where in its document a chunk stands, shown with a citation.
POSITION_KEYS = ("page", "heading", "rows", "json_path", "source_url", "title")


@dataclass
class Hit:
    chunk_id: str
    text: str
    score: float
    document_id: str
    document_name: str | None
    position: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)


def retrieve(knowledge_base: KnowledgeBase, query: str, *, mode: str = "hybrid", top_k: int = 5,
             filters: dict | None = None, threshold: float | None = None) -> list[Hit]:
    """Search ``knowledge_base``. ``filters`` maps metadata keys to conditions (``privex.services.filters``, which
    raises ``Invalid`` for anything else); ``threshold`` (0-1) drops chunks less similar to the query than that."""
    if mode not in MODES:
        raise ValueError(f"unknown retrieval mode {mode!r}; use one of {', '.join(MODES)}")
    metadata_filters = parse_filters(filters)
    embed_model, store = components.searching(knowledge_base)
    needs_embedding = mode != "keyword" or threshold is not None
    embedding = embed_model.get_query_embedding(query) if needs_embedding else None
    result = store.query(VectorStoreQuery(query_str=query, query_embedding=embedding, similarity_top_k=top_k,
                                          mode=MODES[mode], filters=metadata_filters),
                         score_threshold=threshold)
    names = _document_names({node.metadata.get("document_id") for node in result.nodes})
    hits = []
    for node, score in zip(result.nodes, result.similarities):
        metadata = {key: value for key, value in node.metadata.items() if key not in ("parent_id",)}
        document_id = metadata.pop("document_id", node.ref_doc_id)
        parent = metadata.pop("parent_text", None)  # parent-child chunking: answer with the whole passage
        hits.append(Hit(chunk_id=node.node_id, text=parent or node.get_content(), score=float(score),
                        document_id=document_id, document_name=names.get(document_id),
                        position={"chunk": metadata.get("position"),
                                  **{key: metadata[key] for key in POSITION_KEYS if key in metadata}},
                        metadata=metadata))
    return hits


def _document_names(ids) -> dict[str, str]:
    valid = [uuid.UUID(i) for i in ids if i]
    if not valid:
        return {}
    rows = db.session.execute(sa.select(Document.id, Document.name).where(Document.id.in_(valid))).all()
    return {str(row.id): row.name for row in rows}
