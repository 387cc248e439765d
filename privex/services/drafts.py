"""Knowledge-base drafts: settings and sources gathered in Redis, previewed, then finalized into PostgreSQL.

A draft is one JSON value under ``privex:kb-draft:<id>`` that expires ``DRAFT_HOURS`` after its last change; its
uploaded files wait in ``instance/drafts/<workspace>/<draft>/<source>/``. Finalizing creates the knowledge base and
one document per source (a crawl, a set of Notion pages or of Google Docs is one document, fetched afresh by each
ingestion) and queues their ingestion. Changes to a draft hold a short Redis lock, so two uploads at once both land.
"""

from __future__ import annotations

import itertools
import os
import shutil
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from flask import current_app
from llama_index.core.schema import Document as LlamaDocument

from privex.clock import now
from privex.contracts import SourceError, UnreadableDocument
from privex.extensions import db, get_redis, state
from privex.models import Credential, Document, KnowledgeBase, Workspace
from privex.plugins import NotInstalled
from privex.services import components, credentials, knowledge
from privex.services.errors import Conflict, Invalid, NotFound, ProviderFailed
from privex.services.credentials import CredentialUnreadable
from privex.services.ingestion import connector_config, parser_for, upload_folder
from privex.services.drafting import DraftStore

SETTINGS, DEFAULTS = knowledge.SETTINGS, knowledge.DEFAULTS
MAX_SOURCES = 200
PREVIEW_PARTS = 3  # a preview of a connector source reads at most this many pages


STORE = DraftStore("privex:kb-draft")


def _finalized_key(draft_id) -> str:
    return f"{STORE.key(draft_id)}:finalized"


def drafts_root() -> Path:
    return Path(current_app.instance_path) / "drafts"


def draft_folder(draft: dict) -> Path:
    return drafts_root() / draft["workspace_id"] / draft["id"]


def get(workspace: Workspace, draft_id) -> dict:
    """The workspace's draft ``draft_id``: 404 when it is another workspace's, expired or never existed; 409 when it
    was finalized."""
    draft = STORE.read(draft_id)
    if draft is None or draft["workspace_id"] != str(workspace.id):
        finalized = get_redis().get(_finalized_key(draft_id))
        if finalized:
            workspace_id, knowledge_base_id = (finalized.decode() if isinstance(finalized, bytes) else
                                               finalized).split(":")
            if workspace_id == str(workspace.id):
                raise Conflict(f"this draft was finalized into the knowledge base {knowledge_base_id}",
                               errors={"knowledge_base_id": [knowledge_base_id]})
        raise NotFound("Draft not found: it never existed, was deleted or expired "
                       f"({current_app.config.get('DRAFT_HOURS', 24)} hours after its last change).")
    return draft


@contextmanager
def changing(workspace: Workspace, draft_id):
    """The draft, read under its lock; saved (with a new expiry) when the block ends without an error."""
    with get_redis().lock(STORE.key(draft_id) + ":lock", timeout=30, blocking_timeout=10):
        draft = get(workspace, draft_id)
        yield draft
        STORE.save(draft)


def check_settings(settings: dict, current: dict | None = None) -> dict:
    """422 for a plugin that is not installed or a chunker setting it refuses (``knowledge.check_plugins``)."""
    checked = knowledge.check_plugins(dict(settings))
    if "chunking_config" in settings and "chunking_strategy" not in settings and current:
        knowledge.check_plugins({"chunking_strategy": current["chunking_strategy"],
                                 "chunking_config": settings["chunking_config"]})
    return checked


def create(workspace: Workspace, user_id, payload: dict) -> dict:
    sweep_abandoned_files()
    settings = {**DEFAULTS, **check_settings(payload)}
    settings.pop("embedding_dim", None)
    moment = now().isoformat()
    draft = {"id": str(uuid.uuid4()), "workspace_id": str(workspace.id),
             "created_by_id": str(user_id) if user_id else None, "created_at": moment,
             "settings": {key: settings.get(key) for key in SETTINGS}, "sources": []}
    return STORE.save(draft)


def update(draft: dict, payload: dict) -> None:
    check_settings(payload, current=draft["settings"])
    draft["settings"].update({key: value for key, value in payload.items() if key in SETTINGS})


def delete(workspace: Workspace, draft_id) -> None:
    draft = get(workspace, draft_id)
    STORE.delete(draft_id)
    shutil.rmtree(draft_folder(draft), ignore_errors=True)


def sweep_abandoned_files() -> int:
    """Remove the upload folders of drafts that expired (their Redis value is gone); returns how many."""
    root, removed = drafts_root(), 0
    if not root.is_dir():
        return 0
    cutoff = time.time() - STORE.lifetime()
    for folder in root.glob("*/*"):
        if folder.is_dir() and folder.stat().st_mtime < cutoff and not get_redis().exists(STORE.key(folder.name)):
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


def _room_for_one(draft: dict) -> None:
    if len(draft["sources"]) >= MAX_SOURCES:
        raise Invalid(f"a draft holds at most {MAX_SOURCES} sources; finalize it and add more to the "
                      f"knowledge base", errors={"sources": [f"at most {MAX_SOURCES}"]})


def add_uploads(workspace: Workspace, draft_id, storages) -> list[dict]:
    """Store uploaded files as sources of the draft (files are streamed to disk before the draft is locked)."""
    draft = get(workspace, draft_id)
    sources = []
    try:
        for storage in storages:
            source_id = str(uuid.uuid4())
            name, size = knowledge.store_upload(storage, draft_folder(draft) / source_id)
            sources.append({"id": source_id, "type": "upload", "name": name, "size_bytes": size,
                            "mime_type": storage.mimetype or None, "added_at": now().isoformat()})
        with changing(workspace, draft_id) as current:
            if len(current["sources"]) + len(sources) > MAX_SOURCES:
                raise Invalid(f"a draft holds at most {MAX_SOURCES} sources; finalize it and add more to the "
                              f"knowledge base", errors={"sources": [f"at most {MAX_SOURCES}"]})
            current["sources"].extend(sources)
    except BaseException:
        for source in sources:
            shutil.rmtree(draft_folder(draft) / source["id"], ignore_errors=True)
        raise
    return sources


def _credential(workspace: Workspace, credential_id) -> Credential | None:
    if credential_id is None:
        return None
    credential = credentials.in_workspace(workspace.id, credential_id)
    if credential is None:
        raise Invalid("credential_id is not a credential of this workspace",
                      errors={"credential_id": ["not found in this workspace"]})
    return credential


def check_source(workspace: Workspace, connector_name: str, config: dict, credential_id) -> None:
    """422 unless the connector is installed, accepts ``config`` and has the credential it needs."""
    try:
        connector = state().plugins.source_connectors[connector_name]
    except NotInstalled as error:
        raise Invalid(str(error), errors={"connector": [str(error)]}) from error
    if config.get("allow_private") and not current_app.config.get("ALLOW_PRIVATE_SOURCES"):
        raise Invalid("sources on private or loopback addresses are turned off on this server (the operator "
                      "can allow them with PRIVEX_ALLOW_PRIVATE_SOURCES=1)",
                      errors={"config": {"allow_private": ["not allowed on this server"]}})
    credential = _credential(workspace, credential_id)
    try:
        secret = credentials.fresh(credential) if credential else None  # an expired OAuth token is refreshed
        # A connector checks its settings when called and reads the source only as its iterator is read.
        pages = connector.fetch(connector_config(config), secret)
        getattr(pages, "close", lambda: None)()
    except CredentialUnreadable as error:
        raise Invalid(str(error), errors={"credential_id": [str(error)]}) from error
    except SourceError as error:
        if error.transient:  # the token endpoint could not be reached: nothing wrong with what the user gave
            raise ProviderFailed(str(error)) from error
        raise Invalid(str(error), errors={"config": [str(error)]}) from error


def default_name(connector_name: str, config: dict) -> str:
    if connector_name == "web":
        return urlsplit(str(config.get("url", ""))).netloc or "web site"
    if connector_name == "notion":
        count = len(config.get("page_ids") or [])
        return "Notion database" if config.get("database_id") and not count else (
            f"Notion ({count} page{'s' if count != 1 else ''})")
    if connector_name == "google_docs":
        count = len(config.get("document_ids") or [])
        return f"Google Docs ({count} document{'s' if count != 1 else ''})"
    return connector_name


def add_connector_source(workspace: Workspace, draft_id, connector_name: str, payload: dict) -> dict:
    get(workspace, draft_id)  # 404 before anything else
    config = payload["config"]
    check_source(workspace, connector_name, config, payload.get("credential_id"))
    source = {"id": str(uuid.uuid4()), "type": connector_name,
              "name": payload.get("name") or default_name(connector_name, config), "config": config,
              "credential_id": str(payload["credential_id"]) if payload.get("credential_id") else None,
              "added_at": now().isoformat()}
    if connector_name == "web":
        source["source_url"] = config.get("url")
    with changing(workspace, draft_id) as draft:
        _room_for_one(draft)
        draft["sources"].append(source)
    return source


def remove_source(workspace: Workspace, draft_id, source_id) -> None:
    with changing(workspace, draft_id) as draft:
        kept = [source for source in draft["sources"] if source["id"] != str(source_id)]
        if len(kept) == len(draft["sources"]):
            raise NotFound("Source not found in this draft.")
        draft["sources"] = kept
    shutil.rmtree(draft_folder(draft) / str(source_id), ignore_errors=True)


def _source(draft: dict, source_id) -> dict:
    if not draft["sources"]:
        raise Invalid("the draft has no sources yet: add a file, a web site, Notion pages or Google Docs first",
                      errors={"sources": ["none yet"]})
    if source_id is None:
        return draft["sources"][0]
    for source in draft["sources"]:
        if source["id"] == str(source_id):
            return source
    raise NotFound("Source not found in this draft.")


def _parts(workspace: Workspace, draft: dict, source: dict) -> list[LlamaDocument]:
    """The first parts of a source: a whole uploaded file, or the first pages a connector fetches."""
    if source["type"] == "upload":
        path = draft_folder(draft) / source["id"] / source["name"]
        if not path.exists():
            raise Invalid(f"the file of {source['name']} is missing; remove the source and upload it again",
                          errors={"source_id": ["its file is missing"]})
        with path.open("rb") as stream:
            parts = parser_for(source["name"]).parse(stream, source["name"])
    else:
        credential = _credential(workspace, source.get("credential_id")) if source.get("credential_id") else None
        secret = credentials.use(credential, "preview") if credential else None
        pages = state().plugins.source_connectors[source["type"]].fetch(connector_config(source["config"]), secret)
        try:
            parts = list(itertools.islice(pages, PREVIEW_PARTS))
        finally:
            getattr(pages, "close", lambda: None)()
    if not parts or not any(part.text.strip() for part in parts):
        raise UnreadableDocument("no text could be read from this source")
    return parts


def preview(workspace: Workspace, draft_id, args: dict) -> dict:
    """The chunks the draft's chunker (or the one ``args`` names) makes of one source, before anything is saved."""
    draft = get(workspace, draft_id)
    source = _source(draft, args.get("source_id"))
    strategy = args.get("chunking_strategy") or draft["settings"]["chunking_strategy"]
    config = args["chunking_config"] if args.get("chunking_config") is not None else (
        draft["settings"]["chunking_config"] if strategy == draft["settings"]["chunking_strategy"] else {})
    knowledge.check_plugins({"chunking_strategy": strategy, "chunking_config": config})
    settings = draft["settings"]
    try:
        chunker = components.chunker(strategy, config, lambda: components.embedding_model(
            settings["embedding_model"], settings.get("retrieval_config")))
        parts = _parts(workspace, draft, source)
        nodes = chunker.get_nodes_from_documents(parts)
    except (UnreadableDocument, CredentialUnreadable, NotInstalled, ValueError) as error:
        raise Invalid(str(error), errors={"source_id": [str(error)]}) from error
    except SourceError as error:
        if error.transient:
            raise ProviderFailed(f"could not read the source: {error}") from error
        raise Invalid(f"could not read the source: {error}", errors={"source_id": [str(error)]}) from error
    db.session.commit()  # the audit log of a credential used to fetch
    limit = args.get("limit") or 20
    chunks = [{"position": position, "text": node.get_content(), "characters": len(node.get_content()),
               "metadata": {key: value for key, value in node.metadata.items()
                            if isinstance(value, (str, int, float, bool)) or value is None}}
              for position, node in enumerate(nodes[:limit])]
    return {"source_id": source["id"], "source_name": source["name"], "chunking_strategy": strategy,
            "chunking_config": config, "parts_read": len(parts), "partial": source["type"] != "upload",
            "total_chunks": len(nodes), "chunks": chunks}


def finalize(workspace: Workspace, draft_id, user_id) -> tuple[KnowledgeBase, list[Document]]:
    """Create the knowledge base and its documents from the draft; the caller commits nothing more and queues
    the documents' ingestion."""
    with get_redis().lock(STORE.key(draft_id) + ":lock", timeout=60, blocking_timeout=10):
        draft = get(workspace, draft_id)
        settings = dict(draft["settings"])
        if not settings.get("name"):
            raise Invalid("give the knowledge base a name before finalizing", errors={"name": ["required"]})
        try:
            knowledge_base = knowledge.create(workspace, user_id, settings, commit=False)
        except Conflict as error:
            raise Conflict(f"{error.message}; rename the draft", errors=error.errors) from error
        documents, moves = [], []
        for source in draft["sources"]:
            document = Document(id=uuid.uuid4(), workspace_id=workspace.id, knowledge_base_id=knowledge_base.id,
                                name=source["name"], source_type=source["type"], status="pending")
            if source["type"] == "upload":
                path = draft_folder(draft) / source["id"] / source["name"]
                if not path.exists():
                    db.session.rollback()
                    raise Invalid(f"the file of {source['name']} is missing; remove the source and upload it "
                                  f"again", errors={"sources": [f"{source['name']}: its file is missing"]})
                document.mime_type, document.size_bytes = source.get("mime_type"), source["size_bytes"]
                document.storage_path = str(upload_folder(document) / source["name"])
                moves.append((path, Path(document.storage_path)))
            else:
                document.source_url = source.get("source_url")
                document.source_config = {"config": source["config"], "credential": bool(source.get("credential_id"))}
                # A credential deleted since the source was added is left out: the document fails saying so.
                credential = credentials.in_workspace(workspace.id, source["credential_id"]) if source.get(
                    "credential_id") else None
                document.credential_id = credential.id if credential else None
            db.session.add(document)
            documents.append(document)
        for origin, target in moves:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(origin, target)
        try:
            db.session.commit()
        except Exception:
            for origin, target in moves:  # put the files back: the draft stays as it was
                os.replace(target, origin)
            raise
        redis = get_redis()
        redis.set(_finalized_key(draft_id), f"{workspace.id}:{knowledge_base.id}", ex=STORE.lifetime())
        redis.delete(STORE.key(draft_id))
        shutil.rmtree(draft_folder(draft), ignore_errors=True)
    return knowledge_base, documents
