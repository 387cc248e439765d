"""Ingestion: one document from its stored file to indexed chunks, through the plugins its knowledge base names.

parse (document parser) -> chunk (chunker) -> embed (embedding model) -> store (vector store), as a LlamaIndex
``IngestionPipeline``. The document moves pending -> processing -> indexed | failed, with ``chunks_done`` /
``chunks_total`` written as embedding batches finish. The new chunks replace the old ones in one transaction at
the end, so a reindex shows the old chunks until the new ones are complete, and a failure leaves them untouched.
Content that has not changed since the last successful run is not embedded again.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import sqlalchemy as sa
from llama_index.core.ingestion import IngestionPipeline
from llama_index.core.schema import BaseNode, NodeRelationship, RelatedNodeInfo
from llama_index.core.schema import Document as LlamaDocument

from privex.auth.tokens import now
from privex.contracts import ProviderError, SourceError, UnreadableDocument
from privex.extensions import db, state
from privex.models import Document, KnowledgeBase
from privex.plugins import NotInstalled

log = logging.getLogger(__name__)
EMBED_BATCH = 64


class TransientFailure(Exception):
    """Worth retrying later (a provider timed out, a source answered 5xx); the task retries with backoff."""


def parser_for(filename: str):
    """The installed parser that reads files named like ``filename``; UnreadableDocument when none does."""
    suffix = Path(filename).suffix.lower()
    for parser in state().plugins.document_parsers.values():
        if suffix in getattr(parser, "extensions", ()):
            return parser
    known = sorted({ext for parser in state().plugins.document_parsers.values() for ext in parser.extensions})
    raise UnreadableDocument(f"files of type {suffix or '(none)'} cannot be read (readable: {', '.join(known)})")


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def components(knowledge_base: KnowledgeBase):
    """The chunker, embedding model and vector store a knowledge base is configured with (NotInstalled if not)."""
    plugins = state().plugins
    embed_model = plugins.embedding_models[knowledge_base.embedding_model].create(
        **(knowledge_base.retrieval_config.get("embedding") or {}))
    chunker_config = dict(knowledge_base.chunking_config or {})
    if knowledge_base.chunking_strategy == "semantic":
        chunker_config["embed_model"] = embed_model
    chunker = plugins.chunkers[knowledge_base.chunking_strategy].create(**chunker_config)
    store = plugins.vector_stores[knowledge_base.vector_store].create(knowledge_base, knowledge_base.embedding_dim)
    return chunker, embed_model, store


def load(document: Document) -> list[LlamaDocument]:
    if not document.storage_path or not Path(document.storage_path).exists():
        raise UnreadableDocument("the stored file is missing; upload it again")
    with open(document.storage_path, "rb") as stream:
        parsed = parser_for(document.name).parse(stream, document.name)
    if not parsed or not any(part.text.strip() for part in parsed):
        raise UnreadableDocument("no text could be extracted from the file")
    for part in parsed:
        part.metadata.setdefault("file_name", document.name)
    return parsed


def ingest_document(document_id, *, force: bool = False) -> Document:
    """Index one document; returns it with its final status. Raises TransientFailure when a retry may help."""
    document = db.session.get(Document, document_id)
    if document is None:
        raise LookupError(f"document {document_id} does not exist")
    knowledge_base = db.session.get(KnowledgeBase, document.knowledge_base_id)
    digest = file_hash(Path(document.storage_path)) if document.storage_path and Path(
        document.storage_path).exists() else None
    if not force and document.status == "indexed" and digest and digest == document.content_hash:
        return document  # unchanged since it was indexed: nothing to do
    document.status, document.error, document.chunks_done, document.chunks_total = "processing", None, 0, 0
    db.session.commit()
    try:
        nodes = build_nodes(document, knowledge_base)
    except (UnreadableDocument, NotInstalled, ValueError) as error:
        return fail(document, str(error))
    except (ProviderError, SourceError) as error:
        if getattr(error, "transient", False):
            document.status, document.error = "pending", f"will retry: {error}"
            db.session.commit()
            raise TransientFailure(str(error)) from error
        return fail(document, str(error))
    # Swap: old chunks out and new chunks in, in one transaction.
    _, _, store = components(knowledge_base)
    store.delete(str(document.id))
    store.add(nodes)
    document.status, document.content_hash, document.indexed_at = "indexed", digest, now()
    document.chunks_done = document.chunks_total = len(nodes)
    db.session.commit()
    log.info("document indexed", extra={"document_id": str(document.id), "chunks": len(nodes)})
    return document


def build_nodes(document: Document, knowledge_base: KnowledgeBase) -> list[BaseNode]:
    """Parse, chunk and embed, committing progress as embedding batches complete."""
    chunker, embed_model, _ = components(knowledge_base)
    nodes = IngestionPipeline(transformations=[chunker]).run(documents=load(document))
    for position, node in enumerate(nodes):
        node.metadata["position"] = position
        # The chunks' source is the PrivexBot document, whatever ids the parser gave its parts.
        node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=str(document.id))
    document.chunks_total = len(nodes)
    db.session.commit()
    for start in range(0, len(nodes), EMBED_BATCH):
        batch = nodes[start:start + EMBED_BATCH]
        vectors = embed_model.get_text_embedding_batch(
            [node.get_content(metadata_mode="embed") for node in batch])
        for node, vector in zip(batch, vectors):
            node.embedding = vector
        document.chunks_done = start + len(batch)
        db.session.commit()
    return nodes


def fail(document: Document, reason: str) -> Document:
    document.status, document.error = "failed", reason[:2000]
    db.session.commit()
    log.info("document failed", extra={"document_id": str(document.id), "reason": reason})
    return document


def requeue_stuck(older_than_seconds: int = 900) -> list:
    """Documents left `processing` by a worker that died: back to `pending`, returned for re-queueing."""
    stuck = db.session.scalars(sa.select(Document).where(
        Document.status == "processing",
        Document.updated_at < sa.func.now() - sa.text(f"interval '{int(older_than_seconds)} seconds'"))).all()
    for document in stuck:
        document.status, document.error = "pending", "re-queued: the worker processing it stopped"
    db.session.commit()
    return [document.id for document in stuck]
