"""Ingestion: one document from its stored file to indexed chunks, through the plugins its knowledge base names.

parse (document parser) -> chunk (chunker) -> embed (embedding model) -> store (vector store), as a LlamaIndex
``IngestionPipeline``. The document moves pending -> processing -> indexed | failed, with ``chunks_done`` /
``chunks_total`` written as embedding batches finish. The new chunks replace the old ones in one transaction at
the end, so a reindex shows the old chunks until the new ones are complete, and a failure leaves them untouched.
Content that has not changed since the last successful run is not embedded again.

Small stored files are indexed in batches (``ingest_documents``, queued by ``knowledge.queue_ingestion``): the same
steps and states per document, their chunks embedded together and stored in one transaction.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from array import array
from dataclasses import dataclass, field
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
SMALL_DOCUMENT_BYTES = 64 * 1024  # stored files up to this size are indexed in batches (``ingest_documents``)
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


def stored_digest(document: Document) -> str | None:
    """The digest of the document's stored file, None when it has none (what tells an unchanged upload)."""
    path = Path(document.storage_path) if document.storage_path else None
    return file_hash(path) if path is not None and path.exists() else None


def load(document: Document) -> list[LlamaDocument]:
    """The parsed parts of an uploaded document's stored file."""
    return load_file(document.storage_path, document.name)


def load_file(storage_path: str | None, name: str) -> list[LlamaDocument]:
    """The parsed parts of the stored file of the document called ``name``."""
    if not storage_path or not Path(storage_path).exists():
        raise UnreadableDocument("the stored file is missing; upload it again")
    with open(storage_path, "rb") as stream:
        parsed = parser_for(name).parse(stream, name)
    return checked(parsed, name, "no text could be extracted from the file")


def checked(parts: list[LlamaDocument], name: str, empty: str) -> list[LlamaDocument]:
    if not parts or not any(part.text.strip() for part in parts):
        raise UnreadableDocument(empty)
    for part in parts:
        part.metadata.setdefault("file_name", name)
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
    parts = checked(parts, document.name, "the source had no text to index")
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
        digest = stored_digest(document)
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
    store_nodes(store, nodes, vectors)
    return done(document, digest, len(nodes))


def store_nodes(store, nodes: list[BaseNode], vectors: list[array]) -> None:
    """Add ``nodes`` with their ``vectors`` to ``store``, a batch at a time, each node carrying its embedding as the
    list LlamaIndex wants only while it is stored."""
    for start in range(0, len(nodes), STORE_BATCH):
        batch = nodes[start:start + STORE_BATCH]
        for node, vector in zip(batch, vectors[start:start + STORE_BATCH]):
            node.embedding = vector.tolist()
        store.add(batch)
        for node in batch:
            node.embedding = None


@dataclass
class Pending:
    """What a batch needs of one of its documents, read once: the batch writes documents with UPDATE statements by
    id, never through their ORM objects, so one deleted meanwhile is simply not found again (no stale-row error)."""

    id: uuid.UUID
    name: str
    storage_path: str | None
    labels: dict
    digest: str | None
    nodes: list[BaseNode] = field(default_factory=list)
    vectors: list[array] = field(default_factory=list)


def batchable(document: Document) -> bool:
    """Whether ``document`` may be indexed in a batch with others: a stored file small enough that its chunks are
    a few (a large one is a batch of its own: embedding is all its time, and its progress shows batch by batch)."""
    return document.source_type in FILE_SOURCES and (document.size_bytes or 0) <= SMALL_DOCUMENT_BYTES


def ingest_documents(document_ids, *, force: bool = False) -> dict[str, str]:
    """Index small stored files of one knowledge base together; returns each id's final status (``deleted`` when
    it no longer exists). Raises TransientFailure when a retry may help (then every document of the batch that is
    not done is ``pending`` again, saying why).

    Per-document work costs an ingestion of many small files more than the model does: a task, five commits, a
    forward pass of one or two texts, and a turn on the knowledge base's keyword statistics row, which every
    writer of a knowledge base takes in turn. Here the documents are parsed and chunked one by one (one that cannot
    be read fails alone, with its reason), their chunks embedded together in the model's batches, and stored in
    one transaction: old chunks out and new ones in under the documents' row locks (taken in id order, so two
    batches never deadlock), the statistics updated once. Progress (``chunks_done``) is written per model batch.

    Whatever else goes wrong (a permanent provider error, a bug in a plugin) is not blamed on the whole batch: its
    documents are indexed again one by one by ``ingest_document``, which fails only the one at fault."""
    ids = list(dict.fromkeys(uuid.UUID(str(document_id)) for document_id in document_ids))
    documents = db.session.scalars(sa.select(Document).where(Document.id.in_(ids))).all()
    statuses = {str(document_id): "deleted" for document_id in ids}
    if not documents:
        return statuses
    if len({document.knowledge_base_id for document in documents}) > 1:
        raise ValueError("a batch holds the documents of one knowledge base")
    knowledge_base = db.session.get(KnowledgeBase, documents[0].knowledge_base_id)
    batch: list[Pending] = []
    alone = []  # ids of documents not for a batch (a source to fetch, a large file): indexed on their own
    for document in sorted(documents, key=lambda document: ids.index(document.id)):
        if not batchable(document):
            alone.append(document.id)
            continue
        digest = stored_digest(document)
        if not force and document.status == "indexed" and digest and digest == document.content_hash:
            statuses[str(document.id)] = "indexed"  # unchanged since it was indexed: nothing to do
            continue
        batch.append(Pending(id=document.id, name=document.name, storage_path=document.storage_path,
                             labels=dict(document.metadata_ or {}), digest=digest))
    if batch:
        statuses.update(_ingest_batch(batch, knowledge_base, force))
    for document_id in alone:
        statuses[str(document_id)] = ingest_document(document_id, force=force).status
    return statuses


def _ingest_batch(batch: list[Pending], knowledge_base: KnowledgeBase, force: bool) -> dict[str, str]:
    statuses: dict[str, str] = {}
    try:
        # Made before anything commits: the knowledge base's row is not read again (it may be deleted meanwhile).
        chunker = components.chunker_of(knowledge_base)
        embed_model = components.embedding_model(knowledge_base.embedding_model, knowledge_base.retrieval_config)
        store = components.vector_store(knowledge_base)
    except (NotInstalled, ServiceError, ValueError) as error:
        _write(batch, status="failed", error=str(getattr(error, "message", error))[:2000])
        db.session.commit()
        return {str(item.id): "failed" for item in batch}
    _write(batch, status="processing", error=None, chunks_done=0, chunks_total=0)
    db.session.commit()
    readable = []
    for item in batch:
        try:
            item.nodes = chunked(chunker, item.id, item.labels, load_file(item.storage_path, item.name))
            readable.append(item)
        except (UnreadableDocument, ValueError) as error:
            _write([item], status="failed", error=str(error)[:2000])
        except ServiceError as error:
            _write([item], status="failed", error=error.message[:2000])
        except Exception as error:  # a parser's or chunker's bug: this document fails, its neighbours go on
            log.exception("parsing a document failed", extra={"document_id": str(item.id)})
            _write([item], status="failed",
                   error=f"an internal error stopped indexing ({type(error).__name__}); reindex to try again")
        if item not in readable:
            statuses[str(item.id)] = "failed"
    if not readable:
        db.session.commit()
        return statuses
    _write_each([{"id": item.id, "chunks_total": len(item.nodes)} for item in readable])
    db.session.commit()
    try:
        _embed_together(readable, embed_model)
    except (ProviderError, SourceError) as error:
        if getattr(error, "transient", False):
            _write(readable, status="pending", error=f"will retry: {error}")
            db.session.commit()
            raise TransientFailure(str(error)) from error
        return _one_by_one(readable, statuses, force, error)
    except Exception as error:
        return _one_by_one(readable, statuses, force, error)
    try:
        statuses.update(_store_together(readable, store))
    except Exception as error:
        return _one_by_one(readable, statuses, force, error)
    return statuses


def _write(items: list[Pending], **values) -> None:
    """The same values on the rows of these documents (those that still exist)."""
    table = Document.__table__
    db.session.execute(sa.update(table).where(table.c.id.in_([item.id for item in items])).values(**values))


def _write_each(rows: list[dict]) -> None:
    """Each row's values on its document (one statement, executed for every row; a row whose document was
    deleted meanwhile matches nothing). Every row names the same columns."""
    table = Document.__table__
    columns = [key for key in rows[0] if key != "id"]
    db.session.execute(sa.update(table).where(table.c.id == sa.bindparam("row_id")).values(
        {column: sa.bindparam(f"row_{column}") for column in columns}),
        [{f"row_{key}": value for key, value in row.items()} for row in rows])


def _embed_together(items: list[Pending], embed_model) -> None:
    """Every chunk of ``items`` embedded in batches of ``EMBED_BATCH`` whatever document it is from, each
    document's ``chunks_done`` written (one statement) as each batch completes."""
    owners = [(item, node) for item in items for node in item.nodes]
    done: dict[uuid.UUID, int] = {}
    for start in range(0, len(owners), EMBED_BATCH):
        batch = owners[start:start + EMBED_BATCH]
        vectors = embed_model.get_text_embedding_batch([node.get_content(metadata_mode="embed") for _, node in batch])
        for (item, _), vector in zip(batch, vectors):
            item.vectors.append(array("f", vector))
            done[item.id] = len(item.vectors)
        _write_each([{"id": item_id, "chunks_done": count} for item_id, count in done.items()])
        done.clear()
        db.session.commit()


def _store_together(items: list[Pending], store) -> dict[str, str]:
    """The swap of ``ingest_document`` for every document still there, in one transaction; their statuses."""
    alive = set(db.session.scalars(sa.select(Document.id).where(Document.id.in_([item.id for item in items]))
                                   .order_by(Document.id).with_for_update()))
    items = [item for item in items if item.id in alive]
    nodes = []
    for item in items:
        store.delete(str(item.id))
        nodes += item.nodes
    store_nodes(store, nodes, [vector for item in items for vector in item.vectors])
    if items:
        indexed_at = now()
        _write_each([
            {"id": item.id, "status": "indexed", "error": None, "content_hash": item.digest, "indexed_at": indexed_at,
             "chunks_done": len(item.nodes), "chunks_total": len(item.nodes)} for item in items])
    db.session.commit()
    for item in items:
        log.info("document indexed", extra={"document_id": str(item.id), "chunks": len(item.nodes)})
    return {str(item.id): "indexed" for item in items}


def _one_by_one(items: list[Pending], statuses: dict[str, str], force: bool, error: BaseException) -> dict:
    """After a batch failed as a whole: each of its documents indexed on its own, so the one at fault fails alone
    (with its own message) and the others are indexed. A document's transient failure leaves it pending and is
    raised once the others are done, for the task to retry the batch."""
    db.session.rollback()
    log.warning("a batch of documents failed together; indexing them one by one",
                extra={"error": f"{type(error).__name__}: {error}"})
    transient = None
    for item in items:
        try:
            statuses[str(item.id)] = ingest_document(item.id, force=True).status
        except TransientFailure as failure:
            statuses[str(item.id)], transient = "pending", failure
        except NotFound:
            statuses[str(item.id)] = "deleted"
        except Exception as failure:  # what the task does for one document: failed, saying so, and logged
            log.exception("indexing a document failed", extra={"document_id": str(item.id)})
            statuses[str(item.id)] = "failed" if fail_unexpectedly(item.id, failure) else "deleted"
    if transient is not None:
        raise transient
    return statuses


def done(document: Document, digest: str | None, chunks: int) -> Document:
    document.status, document.content_hash, document.indexed_at = "indexed", digest, now()
    document.chunks_done = document.chunks_total = chunks
    db.session.commit()
    log.info("document indexed", extra={"document_id": str(document.id), "chunks": chunks})
    return document


def chunk(document: Document, knowledge_base: KnowledgeBase, parts: list[LlamaDocument]) -> list[BaseNode]:
    """The document's chunks, numbered, with the document as their source."""
    nodes = chunked(components.chunker_of(knowledge_base), document.id, document.metadata_, parts)
    document.chunks_total = len(nodes)
    db.session.commit()
    return nodes


def chunked(chunker, document_id, labels: dict | None, parts: list[LlamaDocument]) -> list[BaseNode]:
    """The chunks ``chunker`` makes of a document's parts, numbered, carrying its labels, with it as their source."""
    nodes = IngestionPipeline(transformations=[chunker]).run(documents=parts)
    labels = {key: value for key, value in (labels or {}).items() if key not in RESERVED_METADATA}
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
        node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=str(document_id))
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
