"""Knowledge bases and documents: creating and changing them with valid plugin choices, storing uploads, queueing
ingestion and reindexing, and deleting them with their vectors and files. Every front end (the API, the builder,
the back office, the drafts) writes a knowledge base through these functions.
"""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path

import sqlalchemy as sa
from flask import current_app

from privex.contracts import UnreadableDocument
from privex.extensions import db, state
from privex.models import Document, KnowledgeBase, Workspace
from privex.models.knowledge import DOCUMENT_STATUSES
from privex.plugins import NotInstalled
from privex.services import components
from privex.services.errors import Conflict, Invalid, NotFound, Unsupported
from privex.services.fields import check_name, check_text
from privex.services.ingestion import batchable, parser_for, upload_folder, workspace_upload_folder

COPY_BLOCK = 1 << 20
SETTINGS = ("name", "description", "vector_store", "embedding_model", "chunking_strategy", "chunking_config",
            "retrieval_config")
CHANGEABLE = ("name", "description", "chunking_strategy", "chunking_config", "retrieval_config")
DEFAULTS = {"description": None, "vector_store": "pgvector", "embedding_model": "all-MiniLM-L6-v2",
            "chunking_strategy": "sentence", "chunking_config": {}, "retrieval_config": {}}


def check_details(payload: dict) -> None:
    """Name and description as every front end must give them; the settings objects are objects."""
    errors = {}
    check_name(payload, errors)
    check_text(payload, errors, "description")
    for key in ("chunking_config", "retrieval_config"):
        if key in payload and not isinstance(payload[key] if payload[key] is not None else {}, dict):
            errors[key] = ["must be an object"]
    for key in ("vector_store", "embedding_model", "chunking_strategy"):
        if key in payload and (not isinstance(payload[key], str) or not payload[key]):
            errors[key] = ["the name of an installed plugin"]
    if isinstance(payload.get("retrieval_config"), dict):
        problems = retrieval_defaults_problems(payload["retrieval_config"])
        if problems:
            errors["retrieval_config"] = problems
    if errors:
        raise Invalid("some knowledge base settings are invalid; see `errors`", errors=errors)


def retrieval_defaults_problems(config: dict) -> dict:
    """What is wrong with a knowledge base's query defaults (``mode``, ``top_k``, ``threshold``; ``embedding`` holds
    the model's settings; ``one_hit_per_document`` keeps each document's best chunk only, see ``retrieval.retrieve``),
    field by field; they are used whenever a query leaves them out."""
    from privex.services.retrieval import MAX_TOP_K, MODES

    problems = {}
    if "mode" in config and config["mode"] not in MODES:
        problems["mode"] = [f"one of {', '.join(MODES)}"]
    top_k = config.get("top_k")
    if "top_k" in config and (not isinstance(top_k, int) or isinstance(top_k, bool) or not 1 <= top_k <= MAX_TOP_K):
        problems["top_k"] = [f"a whole number from 1 to {MAX_TOP_K}"]
    threshold = config.get("threshold")
    if threshold is not None and (not isinstance(threshold, (int, float)) or isinstance(threshold, bool)
                                  or not 0 <= threshold <= 1):
        problems["threshold"] = ["a number from 0 to 1, or null"]
    if "embedding" in config and not isinstance(config["embedding"], dict):
        problems["embedding"] = ["an object of the embedding model's settings"]
    if "one_hit_per_document" in config and not isinstance(config["one_hit_per_document"], bool):
        problems["one_hit_per_document"] = ["true or false"]
    return problems


def check_plugins(payload: dict, current: KnowledgeBase | None = None) -> dict:
    """Invalid, naming what is installed, when a knowledge base asks for a plugin that is not, or a chunker setting
    its chunker refuses; fills ``embedding_dim``."""
    check_details(payload)
    plugins = state().plugins
    errors = {}
    for field, registry in (("vector_store", plugins.vector_stores), ("embedding_model", plugins.embedding_models),
                            ("chunking_strategy", plugins.chunkers)):
        if field in payload:
            try:
                registry[payload[field]]
            except NotInstalled as error:
                errors[field] = [str(error)]
    if errors:
        raise Invalid("some of the chosen plugins are not installed", errors=errors)
    if "embedding_model" in payload:
        model = plugins.embedding_models[payload["embedding_model"]]
        embedding = (payload.get("retrieval_config") or {}).get("embedding") or {}
        dimension = embedding.get("dimension") if isinstance(embedding, dict) else None
        dimension = dimension or model.dimension
        if not isinstance(dimension, int) or isinstance(dimension, bool) or not 1 <= dimension <= 16000:
            raise Invalid(f"embedding model {payload['embedding_model']!r} needs its dimension: set "
                          f"retrieval_config.embedding.dimension (1-16000)",
                          errors={"retrieval_config": ["embedding.dimension is required for this model"]})
        payload["embedding_dim"] = int(dimension)
    if "chunking_strategy" in payload or "chunking_config" in payload:
        strategy = payload.get("chunking_strategy") or (current.chunking_strategy if current else "sentence")
        config = payload.get("chunking_config", current.chunking_config if current else {}) or {}
        # A chunker that needs the embedding model (semantic) gets it, and is checked, at ingestion.
        if not components.needs_embedding(plugins.chunkers[strategy]):
            try:
                components.chunker(strategy, config)
            except (TypeError, ValueError) as error:
                raise Invalid(f"chunking_config: {error}", errors={"chunking_config": [str(error)]}) from error
    return payload


def _name_taken(workspace_id, name: str, but=None) -> bool:
    statement = sa.select(KnowledgeBase.id).where(KnowledgeBase.workspace_id == workspace_id,
                                                  KnowledgeBase.name == name)
    if but is not None:
        statement = statement.where(KnowledgeBase.id != but)
    return db.session.scalar(statement) is not None


def refuse_taken_name(workspace_id, name: str, but=None) -> None:
    if _name_taken(workspace_id, name, but):
        raise Conflict(f"a knowledge base named {name!r} already exists in this workspace",
                       errors={"name": ["already used by another knowledge base of this workspace"]})


def create(workspace: Workspace, user_id, payload: dict, *, commit: bool = True) -> KnowledgeBase:
    """A knowledge base with the given settings over the defaults (plugins by name). Commits unless told not to."""
    unknown = sorted(set(payload) - set(SETTINGS))
    if unknown:
        raise Invalid(f"unknown settings: {', '.join(unknown)}", errors={key: ["unknown setting"] for key in unknown})
    if not payload.get("name"):
        raise Invalid("give the knowledge base a name", errors={"name": ["required"]})
    settings = check_plugins({**DEFAULTS, **{key: value for key, value in payload.items() if value is not None
                                             or key == "description"}})
    settings["chunking_config"] = settings.get("chunking_config") or {}
    settings["retrieval_config"] = settings.get("retrieval_config") or {}
    refuse_taken_name(workspace.id, settings["name"])
    knowledge_base = KnowledgeBase(workspace_id=workspace.id, created_by_id=user_id, **settings)
    db.session.add(knowledge_base)
    if commit:
        db.session.commit()
    else:
        db.session.flush()
    return knowledge_base


def update(knowledge_base: KnowledgeBase, changes: dict) -> KnowledgeBase:
    """Rename, describe, or change the chunker and retrieval defaults (a new chunker applies when documents are
    reindexed; the store and embedding model stay what the vectors were made with). Commits."""
    fixed = sorted(set(changes) & {"vector_store", "embedding_model"})
    if fixed:
        raise Invalid("the vector store and embedding model cannot change once a knowledge base exists: create "
                      "another knowledge base", errors={key: ["cannot change"] for key in fixed})
    changes = {key: value for key, value in changes.items() if key in CHANGEABLE}
    if "name" in changes and changes["name"] != knowledge_base.name:
        refuse_taken_name(knowledge_base.workspace_id, changes["name"], but=knowledge_base.id)
    for key, value in check_plugins(changes, current=knowledge_base).items():
        setattr(knowledge_base, key, value if value is not None or key == "description" else {})
    db.session.commit()
    return knowledge_base


def safe_name(filename: str) -> str:
    name = Path(filename.replace("\\", "/")).name.strip()
    name = re.sub(r"[^\w.\- ()\[\]]+", "_", name)[:200]
    return name or "upload"


def store_upload(storage, folder: Path) -> tuple[str, int]:
    """Stream an uploaded file into ``folder`` (created) in blocks; returns its safe name and size.

    Unsupported for a type no parser reads, Invalid for an empty file (the folder is then removed)."""
    name = safe_name(storage.filename or "")
    try:
        parser_for(name)
    except UnreadableDocument as error:
        raise Unsupported(str(error), errors={"file": [str(error)]}) from error
    folder.mkdir(parents=True, exist_ok=True)
    size = 0
    with (folder / name).open("wb") as target:
        while block := storage.stream.read(COPY_BLOCK):
            target.write(block)
            size += len(block)
    if size == 0:
        shutil.rmtree(folder, ignore_errors=True)
        raise Invalid(f"{name} is empty", errors={"file": ["the file is empty"]})
    return name, size


def add_upload(knowledge_base: KnowledgeBase, storage, uploaded_by=None) -> Document:
    """Store an uploaded file as a pending document of ``knowledge_base`` (see ``store_upload``)."""
    document = Document(workspace_id=knowledge_base.workspace_id, knowledge_base_id=knowledge_base.id,
                        source_type="upload", mime_type=storage.mimetype or None, status="pending")
    document.id = uuid.uuid4()
    folder = upload_folder(document)
    document.name, document.size_bytes = store_upload(storage, folder)
    document.storage_path = str(folder / document.name)
    db.session.add(document)
    return document


def add_uploads(knowledge_base: KnowledgeBase, storages) -> list[Document]:
    """Store uploaded files as pending documents and queue their ingestion; nothing is kept if one is refused."""
    documents = []
    try:
        for storage in storages:
            documents.append(add_upload(knowledge_base, storage))
        db.session.commit()
    except BaseException:
        db.session.rollback()
        for document in documents:
            shutil.rmtree(upload_folder(document), ignore_errors=True)
        raise
    queue_ingestion(documents)
    return documents


def queue_ingestion(documents, force: bool = False) -> None:
    """Queue after commit: the worker must find the rows. Sent through this app's Celery (not the process-wide
    default), so each app's tasks run in its own context.

    Small stored files go in batches of up to ``INGEST_BATCH`` documents of one knowledge base, one task each
    (``ingest_documents``: their chunks share the model's batches and one transaction); any other document (a
    large file, a source to fetch) is a task of its own."""
    tasks = state().celery.tasks
    size = max(1, current_app.config.get("INGEST_BATCH", 1))
    batches: dict = {}
    for document in documents:
        if size > 1 and batchable(document):
            batches.setdefault(document.knowledge_base_id, []).append(str(document.id))
        else:
            tasks["privex.ingest_document"].delay(str(document.id), force=force)
    for ids in batches.values():
        for start in range(0, len(ids), size):
            batch = ids[start:start + size]
            if len(batch) == 1:
                tasks["privex.ingest_document"].delay(batch[0], force=force)
            else:
                tasks["privex.ingest_documents"].delay(batch, force=force)


def reindex(documents) -> int:
    """Rebuild the documents' chunks (after a chunker change); their old chunks serve until each is done."""
    documents = list(documents)
    for document in documents:
        document.status = "pending"
    db.session.commit()
    queue_ingestion(documents, force=True)
    return len(documents)


def reindex_knowledge_base(knowledge_base: KnowledgeBase) -> int:
    return reindex(db.session.scalars(sa.select(Document).where(Document.knowledge_base_id == knowledge_base.id)))


def update_document(document: Document, changes: dict) -> Document:
    """Rename a document or change its labels (``metadata``; every chunk carries them, so query filters can name
    them: changed labels reindex the document). Commits."""
    errors = {}
    check_name(changes, errors, limit=512)
    if "metadata_" in changes and not isinstance(changes["metadata_"], dict):
        errors["metadata"] = ["must be an object"]
    if errors:
        raise Invalid("some document details are invalid; see `errors`", errors=errors)
    relabelled = "metadata_" in changes and changes["metadata_"] != (document.metadata_ or {})
    for key in ("name", "metadata_"):
        if key in changes:
            setattr(document, key, changes[key])
    db.session.commit()
    if relabelled and document.status in ("indexed", "failed"):
        reindex([document])  # its chunks carry its labels, for query filters: they are rebuilt with the new ones
    return document


def document_counts(knowledge_base_ids) -> dict:
    """Each knowledge base's documents in one query (a page of a list shows many):
    ``{id: {"statuses": {status: count}, "documents": n, "passages": n}}``, the passages being those of its indexed
    documents as their rows record them, so no chunk is read."""
    ids = list(knowledge_base_ids)
    counts = {kb_id: {"statuses": dict.fromkeys(DOCUMENT_STATUSES, 0), "documents": 0, "passages": 0}
              for kb_id in ids}
    if ids:
        rows = db.session.execute(sa.select(
            Document.knowledge_base_id, Document.status, sa.func.count(),
            sa.func.coalesce(sa.func.sum(Document.chunks_total), 0)).where(
            Document.knowledge_base_id.in_(ids)).group_by(Document.knowledge_base_id, Document.status))
        for kb_id, status, count, chunks in rows:
            counts[kb_id]["statuses"][status] = count
            counts[kb_id]["documents"] += count
            if status == "indexed":
                counts[kb_id]["passages"] = int(chunks)
    return counts


def document_of(knowledge_base: KnowledgeBase, document: Document) -> Document:
    """``document`` when it belongs to ``knowledge_base``; NotFound otherwise."""
    if document.knowledge_base_id != knowledge_base.id:
        raise NotFound("Document not found.")
    return document


def delete_documents(knowledge_base: KnowledgeBase, documents) -> None:
    """Delete documents and their vectors in the caller's transaction; their files after it commits."""
    store = components.vector_store(knowledge_base)
    folders = []
    for document in documents:
        store.delete(str(document.id))
        folders.append(upload_folder(document))
        db.session.delete(document)
    db.session.commit()
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


def delete_knowledge_base(knowledge_base: KnowledgeBase) -> None:
    folders = [upload_folder(document) for document in knowledge_base.documents]
    try:
        components.vector_store(knowledge_base).clear()
    except NotInstalled:
        pass  # its chunks go with the row (ON DELETE CASCADE) whichever store wrote them
    db.session.execute(sa.delete(KnowledgeBase).where(KnowledgeBase.id == knowledge_base.id))
    db.session.commit()
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


def clear_workspaces(workspace_ids) -> list[Path]:
    """Before deleting workspaces: clear the vectors of their knowledge bases in the caller's transaction, whichever
    store holds them; returns the upload folders to remove once it commits (``remove_folders``)."""
    workspace_ids = list(workspace_ids)
    for knowledge_base in db.session.scalars(sa.select(KnowledgeBase).where(
            KnowledgeBase.workspace_id.in_(workspace_ids))):
        try:
            components.vector_store(knowledge_base).clear()
        except NotInstalled:
            pass  # its chunks go with the row (ON DELETE CASCADE) whichever store wrote them
    return [workspace_upload_folder(workspace_id) for workspace_id in workspace_ids]


def remove_folders(folders) -> None:
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
