"""Ingestion: one document from its stored file to indexed chunks, through the plugins its knowledge base names.

parse (document parser) -> chunk (chunker) -> embed (embedding model) -> store (vector store), as a LlamaIndex
``IngestionPipeline``. The document moves pending -> processing -> indexed | failed, with ``chunks_done`` /
``chunks_total`` written as embedding batches finish. The new chunks replace the old ones in one transaction at
the end, so a reindex shows the old chunks until the new ones are complete, and a failure leaves them untouched.
Content that has not changed since the last successful run is not embedded again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from array import array
from pathlib import Path

import sqlalchemy as sa
from flask import current_app
from llama_index.core.ingestion import IngestionPipeline
from llama_index.core.schema import BaseNode, NodeRelationship, RelatedNodeInfo
from llama_index.core.schema import Document as LlamaDocument

from privex.clock import now
from privex.contracts import ProviderError, SourceError, UnreadableDocument
from privex.extensions import db, state
from privex.models import Credential, Document, KnowledgeBase
from privex.models.knowledge import FILE_SOURCES
from privex.plugins import NotInstalled
from privex.services import components, credentials
from privex.services.credentials import CredentialUnreadable
from privex.services.errors import NotFound, ServiceError

log = logging.getLogger(__name__)
EMBED_BATCH = 64
STORE_BATCH = 1000  # nodes handed to the vector store at a time
RESERVED_METADATA = ("position", "document_id", "parent_id", "parent_text")  # set by the core, never by a label


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


def workspace_upload_folder(workspace_id) -> Path:
    """Where the files of a workspace's documents are kept, one folder per document."""
    return Path(current_app.instance_path) / "uploads" / str(workspace_id)


def upload_folder(document: Document) -> Path:
    """Where a document's file (an upload, or a connector's snapshot) is kept."""
    return workspace_upload_folder(document.workspace_id) / str(document.id)


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load(document: Document) -> list[LlamaDocument]:
    """The parsed parts of an uploaded document's stored file."""
    if not document.storage_path or not Path(document.storage_path).exists():
        raise UnreadableDocument("the stored file is missing; upload it again")
    with open(document.storage_path, "rb") as stream:
        parsed = parser_for(document.name).parse(stream, document.name)
    return checked(parsed, document, "no text could be extracted from the file")


def checked(parts: list[LlamaDocument], document: Document, empty: str) -> list[LlamaDocument]:
    if not parts or not any(part.text.strip() for part in parts):
        raise UnreadableDocument(empty)
    for part in parts:
        part.metadata.setdefault("file_name", document.name)
    return parts


def connector_config(config: dict | None) -> dict:
    """A source's settings as the connector gets them: private addresses only where the operator allows them."""
    config = dict(config or {})
    if config.get("allow_private") and not current_app.config.get("ALLOW_PRIVATE_SOURCES"):
        config.pop("allow_private")
    return config


def fetch(document: Document) -> tuple[list[LlamaDocument], str]:
    """A connector document's parts, fetched afresh from its source, and the digest of their snapshot.

    The snapshot (one JSON line per part) is kept where uploads are, so what was indexed can be read back."""
    connector = state().plugins.source_connectors[document.source_type]
    secret = None
    if document.credential_id:
        secret = credentials.use(db.session.get(Credential, document.credential_id), "ingest",
                                 document_id=str(document.id))
        db.session.commit()
    elif document.source_config.get("credential"):
        raise UnreadableDocument("the credential this source reads with was deleted; give it another one")
    limit = current_app.config.get("MAX_UPLOAD_MB", 50) * 1024 * 1024
    parts, size = [], 0
    for part in connector.fetch(connector_config(document.source_config.get("config")), secret):
        size += len(part.text.encode())
        if size > limit:
            raise UnreadableDocument(f"the source holds more than {limit // (1024 * 1024)} MB of text; narrow it "
                                     f"(fewer pages, include patterns)")
        parts.append(part)
    parts = checked(parts, document, "the source had no text to index")
    folder = upload_folder(document)
    folder.mkdir(parents=True, exist_ok=True)
    snapshot = folder / "source.jsonl"
    with snapshot.open("w", encoding="utf-8") as stream:
        for part in parts:
            stream.write(json.dumps({"text": part.text, "metadata": part.metadata}, default=str,
                                    sort_keys=True) + "\n")
    document.storage_path, document.size_bytes = str(snapshot), snapshot.stat().st_size
    return parts, file_hash(snapshot)


def ingest_document(document_id, *, force: bool = False) -> Document:
    """Index one document; returns it with its final status. Raises TransientFailure when a retry may help."""
    document = db.session.get(Document, document_id)
    if document is None:
        raise NotFound(f"document {document_id} does not exist")
    knowledge_base = db.session.get(KnowledgeBase, document.knowledge_base_id)
    was_indexed, previous_digest = document.status == "indexed", document.content_hash
    fetched = document.source_type not in FILE_SOURCES  # fetched by the source connector of that name
    digest = None
    if not fetched:
        digest = file_hash(Path(document.storage_path)) if document.storage_path and Path(
            document.storage_path).exists() else None
        if not force and was_indexed and digest and digest == previous_digest:
            return document  # unchanged since it was indexed: nothing to do
    document.status, document.error, document.chunks_done, document.chunks_total = "processing", None, 0, 0
    db.session.commit()
    try:
        if fetched:
            parts, digest = fetch(document)
            if not force and was_indexed and digest == previous_digest:
                # The source has not changed since it was indexed: its chunks stay as they are.
                return done(document, digest,
                            components.vector_store(knowledge_base).summary(str(document.id))["chunks"])
        else:
            parts = load(document)
        nodes = chunk(document, knowledge_base, parts)
        del parts  # the nodes hold the text now; a large PDF's pages need not stay in memory while it is embedded
        vectors = embed(document, knowledge_base, nodes)
    except (UnreadableDocument, NotInstalled, CredentialUnreadable, ValueError) as error:
        return fail(document, str(error))
    except ServiceError as error:  # a service refused (a chunker setting, a plan limit): the task's failed state
        return fail(document, error.message)
    except (ProviderError, SourceError) as error:
        if getattr(error, "transient", False):
            document.status, document.error = "pending", f"will retry: {error}"
            db.session.commit()
            raise TransientFailure(str(error)) from error
        return fail(document, str(error))
    # Swap: old chunks out and new chunks in, in one transaction, under the document's row lock: two runs of one
    # document (a worker taken for dead whose task was delivered again) swap one after the other, never interleaved,
    # so neither leaves its chunks beside the other's.
    db.session.execute(sa.select(Document.id).where(Document.id == document.id).with_for_update())
    store = components.vector_store(knowledge_base)
    store.delete(str(document.id))
    # A batch at a time, each node carrying its embedding as the list LlamaIndex wants only while it is stored.
    for start in range(0, len(nodes), STORE_BATCH):
        batch = nodes[start:start + STORE_BATCH]
        for node, vector in zip(batch, vectors[start:start + STORE_BATCH]):
            node.embedding = vector.tolist()
        store.add(batch)
        for node in batch:
            node.embedding = None
    return done(document, digest, len(nodes))


def done(document: Document, digest: str | None, chunks: int) -> Document:
    document.status, document.content_hash, document.indexed_at = "indexed", digest, now()
    document.chunks_done = document.chunks_total = chunks
    db.session.commit()
    log.info("document indexed", extra={"document_id": str(document.id), "chunks": chunks})
    return document


def chunk(document: Document, knowledge_base: KnowledgeBase, parts: list[LlamaDocument]) -> list[BaseNode]:
    """The document's chunks, numbered, with the document as their source."""
    chunker = components.chunker_of(knowledge_base)
    nodes = IngestionPipeline(transformations=[chunker]).run(documents=parts)
    labels = {key: value for key, value in (document.metadata_ or {}).items() if key not in RESERVED_METADATA}
    for position, node in enumerate(nodes):
        node.metadata["position"] = position
        # The document's own labels ride on each chunk, so query filters can name them; what the parser recorded
        # (page, heading, title) wins a clash, and labels stay out of the embedded and prompted text.
        for key, value in labels.items():
            if key not in node.metadata:
                node.metadata[key] = value
                node.excluded_embed_metadata_keys.append(key)
                node.excluded_llm_metadata_keys.append(key)
        # The chunks' source is the PrivexBot document, whatever ids the parser gave its parts.
        node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=str(document.id))
    document.chunks_total = len(nodes)
    db.session.commit()
    return nodes


def embed(document: Document, knowledge_base: KnowledgeBase, nodes: list[BaseNode]) -> list[array]:
    """The nodes' embeddings in order, committing progress as batches complete.

    Kept as float32 arrays (what the model computes and pgvector stores) until the nodes are stored: as lists of
    Python floats the 30,000 embeddings of a 50 MB text PDF took about 370 MB, as arrays they take 50 MB."""
    embed_model = components.embedding_model(knowledge_base.embedding_model, knowledge_base.retrieval_config)
    vectors = []
    for start in range(0, len(nodes), EMBED_BATCH):
        batch = nodes[start:start + EMBED_BATCH]
        vectors += [array("f", vector) for vector in embed_model.get_text_embedding_batch(
            [node.get_content(metadata_mode="embed") for node in batch])]
        document.chunks_done = start + len(batch)
        db.session.commit()
    return vectors


def fail(document: Document, reason: str) -> Document:
    document.status, document.error = "failed", reason[:2000]
    db.session.commit()
    log.info("document failed", extra={"document_id": str(document.id), "reason": reason})
    return document


def fail_unexpectedly(document_id, error: BaseException) -> bool:
    """Mark a document failed after an error ingestion did not expect, in a fresh transaction; False when the
    document no longer exists (deleted meanwhile, which is what the error was: its row or its chunks' parent vanished
    under the transaction)."""
    db.session.rollback()
    document = db.session.get(Document, document_id)
    if document is None:
        return False
    if document.status in ("pending", "processing"):
        fail(document, f"an internal error stopped indexing ({type(error).__name__}); reindex to try again")
    return True


def requeue_stuck(older_than_seconds: int = 900) -> list:
    """Documents left `processing` by a worker that died: back to `pending`, returned for re-queueing."""
    stuck = db.session.scalars(sa.select(Document).where(
        Document.status == "processing",
        Document.updated_at < sa.func.now() - sa.text(f"interval '{int(older_than_seconds)} seconds'"))).all()
    for document in stuck:
        document.status, document.error = "pending", "re-queued: the worker processing it stopped"
    db.session.commit()
    return [document.id for document in stuck]
