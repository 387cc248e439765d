"""Retrieval: the chunks of a knowledge base that best answer a query, each with what an answer needs to cite it.

The query is embedded with the model the knowledge base's chunks were embedded with, then searched in the
knowledge base's vector store in one of three modes: ``vector``, ``keyword`` or ``hybrid`` (the default).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

import sqlalchemy as sa
from llama_index.core.vector_stores.types import VectorStoreQuery, VectorStoreQueryMode

from privex.extensions import db
from privex.models import Document, KnowledgeBase
from privex.plugins import NotInstalled
from privex.services import components
from privex.services.errors import Invalid
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
    raises ``Invalid`` for anything else); ``threshold`` (0-1) drops chunks less similar to the query than that.

    A knowledge base whose ``retrieval_config`` has ``one_hit_per_document`` gets each document's best chunk only,
    so ``top_k`` hits are ``top_k`` documents (on SciFact, where a claim is answered by whole abstracts, this ranks
    better: BENCHMARKS.md); by default a document may give several hits."""
    if mode not in MODES:
        raise ValueError(f"unknown retrieval mode {mode!r}; use one of {', '.join(MODES)}")
    metadata_filters = parse_filters(filters)
    embed_model, store = components.searching(knowledge_base)
    needs_embedding = mode != "keyword" or threshold is not None
    embedding = embed_model.get_query_embedding(query) if needs_embedding else None
    one_per_document = bool((knowledge_base.retrieval_config or {}).get("one_hit_per_document"))
    options = {"one_per_document": True} if one_per_document else {}  # a store may not know the option: asked only then
    result = store.query(VectorStoreQuery(query_str=query, query_embedding=embedding, similarity_top_k=top_k,
                                          mode=MODES[mode], filters=metadata_filters),
                         score_threshold=threshold, **options)
    # A store may read its hits' document names with them (``document_name`` in the metadata): else one query.
    named = all("document_name" in node.metadata for node in result.nodes)
    names = {} if named else _document_names({node.metadata.get("document_id") for node in result.nodes})
    hits, documents = [], set()
    for node, score in zip(result.nodes, result.similarities):
        metadata = {key: value for key, value in node.metadata.items() if key not in ("parent_id",)}
        document_id = metadata.pop("document_id", node.ref_doc_id)
        document_name = metadata.pop("document_name", None) if named else names.get(document_id)
        if one_per_document and document_id in documents:  # a store that ignored the option
            continue
        documents.add(document_id)
        parent = metadata.pop("parent_text", None)  # parent-child chunking: answer with the whole passage
        hits.append(Hit(chunk_id=node.node_id, text=parent or node.get_content(), score=float(score),
                        document_id=document_id, document_name=document_name,
                        position={"chunk": metadata.get("position"),
                                  **{key: metadata[key] for key in POSITION_KEYS if key in metadata}},
                        metadata=metadata))
    return hits


def search(knowledge_base: KnowledgeBase, query, *, mode: str | None = None, top_k: int | None = None,
           threshold: float | None = None, filters: dict | None = None) -> dict:
    """A test search as a person asks it (the builder's test panel): ``query`` checked, what is left out taken from
    the knowledge base's query defaults (``retrieval_config``), then ``retrieve``. Returns the mode used, the hits
    and how long it took; Invalid names each field at fault."""
    defaults = knowledge_base.retrieval_config or {}
    mode = mode or defaults.get("mode") or "hybrid"
    top_k = top_k if top_k is not None else defaults.get("top_k", 5)
    threshold = threshold if threshold is not None else defaults.get("threshold")
    errors = {}
    if not isinstance(query, str) or not query.strip():
        errors["query"] = ["type a question"]
    elif len(query) > 2000:
        errors["query"] = ["at most 2000 characters"]
    if mode not in MODES:
        errors["mode"] = [f"one of {', '.join(MODES)}"]
    if not isinstance(top_k, int) or isinstance(top_k, bool) or not 1 <= top_k <= MAX_TOP_K:
        errors["top_k"] = [f"a whole number from 1 to {MAX_TOP_K}"]
    if errors:
        raise Invalid("the search cannot run as asked; see `errors`", errors=errors)
    started = time.perf_counter()
    try:
        hits = retrieve(knowledge_base, query.strip(), mode=mode, top_k=top_k, filters=filters, threshold=threshold)
    except NotInstalled as error:  # the store or model it was built with has been uninstalled since
        raise Invalid(str(error)) from error
    return {"mode": mode, "top_k": top_k, "hits": hits, "took_ms": round((time.perf_counter() - started) * 1000, 1)}


def _document_names(ids) -> dict[str, str]:
    valid = [uuid.UUID(i) for i in ids if i]
    if not valid:
        return {}
    rows = db.session.connection().execute(_NAMES, {"ids": valid}).all()
    return {str(row.id): row.name for row in rows}


_NAMES = sa.select(Document.id, Document.name).where(Document.id.in_(sa.bindparam("ids", expanding=True)))
