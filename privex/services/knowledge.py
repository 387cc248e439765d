"""Knowledge bases and documents: creating them with valid plugin choices, storing uploads, queueing ingestion,
and deleting them with their vectors and files.
"""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path

import sqlalchemy as sa
from flask_smorest import abort

from privex.contracts import UnreadableDocument
from privex.extensions import db, state
from privex.models import Document, KnowledgeBase
from privex.plugins import NotInstalled
from privex.services.ingestion import parser_for, upload_folder

COPY_BLOCK = 1 << 20


def check_plugins(payload: dict, current: KnowledgeBase | None = None) -> dict:
    """422 naming what is installed when a knowledge base asks for a plugin that is not; fills embedding_dim."""
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
        abort(422, message="some of the chosen plugins are not installed", errors=errors)
    if "embedding_model" in payload:
        model = plugins.embedding_models[payload["embedding_model"]]
        dimension = (payload.get("retrieval_config") or {}).get("embedding", {}).get("dimension") or model.dimension
        if not dimension:
            abort(422, message=f"embedding model {payload['embedding_model']!r} needs its dimension: set "
                               f"retrieval_config.embedding.dimension",
                  errors={"retrieval_config": ["embedding.dimension is required for this model"]})
        payload["embedding_dim"] = int(dimension)
    if "chunking_strategy" in payload or "chunking_config" in payload:
        strategy = payload.get("chunking_strategy") or (current.chunking_strategy if current else "sentence")
        config = payload.get("chunking_config", current.chunking_config if current else {}) or {}
        chunker = plugins.chunkers[strategy]
        # A chunker that needs the embedding model (semantic) gets it, and is checked, at ingestion.
        if "embed_model" not in (getattr(chunker, "config_schema", None) or {}).get("properties", {}):
            try:
                chunker.create(**config)
            except (TypeError, ValueError) as error:
                abort(422, message=f"chunking_config: {error}", errors={"chunking_config": [str(error)]})
    return payload


def safe_name(filename: str) -> str:
    name = Path(filename.replace("\\", "/")).name.strip()
    name = re.sub(r"[^\w.\- ()\[\]]+", "_", name)[:200]
    return name or "upload"


def store_upload(storage, folder: Path) -> tuple[str, int]:
    """Stream an uploaded file into ``folder`` (created) in blocks; returns its safe name and size.

    415 for a type no parser reads, 422 for an empty file (the folder is then removed)."""
    name = safe_name(storage.filename or "")
    try:
        parser_for(name)
    except UnreadableDocument as error:
        abort(415, message=str(error), errors={"file": [str(error)]})
    folder.mkdir(parents=True, exist_ok=True)
    size = 0
    with (folder / name).open("wb") as target:
        while block := storage.stream.read(COPY_BLOCK):
            target.write(block)
            size += len(block)
    if size == 0:
        shutil.rmtree(folder, ignore_errors=True)
        abort(422, message=f"{name} is empty", errors={"file": ["the file is empty"]})
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


def queue_ingestion(documents, force: bool = False) -> None:
    """Queue after commit: the worker must find the rows. Sent through this app's Celery (not the process-wide
    default), so each app's tasks run in its own context."""
    task = state().celery.tasks["privex.ingest_document"]
    for document in documents:
        task.delay(str(document.id), force=force)


def delete_documents(knowledge_base: KnowledgeBase, documents) -> None:
    """Delete documents and their vectors in the caller's transaction; their files after it commits."""
    store = state().plugins.vector_stores[knowledge_base.vector_store].create(knowledge_base,
                                                                             knowledge_base.embedding_dim)
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
        state().plugins.vector_stores[knowledge_base.vector_store].create(
            knowledge_base, knowledge_base.embedding_dim).clear()
    except NotInstalled:
        pass  # its chunks go with the row (ON DELETE CASCADE) whichever store wrote them
    db.session.execute(sa.delete(KnowledgeBase).where(KnowledgeBase.id == knowledge_base.id))
    db.session.commit()
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
