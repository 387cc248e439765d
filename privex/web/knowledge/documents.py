"""Documents of a knowledge base: uploading more, the progress the pages poll, a document's page with its passages,
renaming, reindexing and deleting one."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from flask import flash, jsonify, redirect, render_template, request, url_for

from privex.extensions import db
from privex.models import Document, KnowledgeBase
from privex.plugins import NotInstalled
from privex.services import components, knowledge
from privex.services.errors import Invalid, ServiceError
from privex.statuses import status_of
from privex.web.forms import form_status, show_errors
from privex.web.knowledge import BUSY, bp, json_refusal, wants_json
from privex.web.knowledge.bases import show, summary
from privex.web.knowledge.forms import RenameForm
from privex.web.shell import may, page_number, resource_or_404, scoped

CHUNKS_PER_PAGE = 20
MAX_POLLED = 100  # documents one progress request reports on (a page of the list shows 50)


def chosen_files() -> list:
    """The files of an upload (the drop zone sends one at a time as ``files``; the plain form several)."""
    files = [storage for storage in request.files.getlist("files") if storage.filename]
    if not files:
        raise Invalid("choose a file to upload", errors={"files": ["choose at least one file"]})
    return files


@bp.post("/<uuid:kb_id>/files")
def upload(kb_id):
    """Add files to a knowledge base: each becomes a pending document, indexed in the background."""
    knowledge_base = resource_or_404(KnowledgeBase, kb_id, "resources.write")
    try:
        added = knowledge.add_uploads(knowledge_base, chosen_files())
    except ServiceError as error:
        db.session.rollback()
        if wants_json():
            return json_refusal(error)
        return show(kb_id, upload_error=error.message, status=status_of(error))
    if wants_json():
        return jsonify({"documents": [{"id": str(document.id), "name": document.name} for document in added]}), 201
    flash(f"Added {len(added)} document{'s' if len(added) != 1 else ''}: {'they are' if len(added) != 1 else 'it is'} "
          f"being indexed.", "success")
    return redirect(url_for(".show", kb_id=knowledge_base.id))


def document_or_404(kb_id, doc_id, action: str = "resources.read") -> tuple[KnowledgeBase, Document]:
    knowledge_base = resource_or_404(KnowledgeBase, kb_id, action)
    return knowledge_base, knowledge.document_of(knowledge_base, resource_or_404(Document, doc_id, action))


@bp.get("/<uuid:kb_id>/progress")
def progress(kb_id):
    """What the pages poll while documents are pending or processing: each asked document's status (swapped in
    place, out of band), the knowledge base's summary when asked, and the poller itself while any is still busy."""
    knowledge_base = resource_or_404(KnowledgeBase, kb_id)
    ids = []
    for value in (request.args.get("ids") or "").split(",")[:MAX_POLLED]:
        try:
            ids.append(uuid.UUID(value))
        except ValueError:
            continue
    documents = db.session.scalars(scoped(Document).where(
        Document.knowledge_base_id == knowledge_base.id, Document.id.in_(ids))).all() if ids else []
    return render_template("partials/knowledge/progress.html", kb=knowledge_base, documents=documents, oob=True,
                           busy=[document for document in documents if document.status in BUSY],
                           summary=summary(knowledge_base) if request.args.get("summary") else None)


@dataclass
class Window:
    """A page of a document's chunks, shaped like a Flask-SQLAlchemy page for the pagination macro."""

    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def prev_num(self) -> int:
        return self.page - 1

    @property
    def next_num(self) -> int:
        return self.page + 1

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page


def chunk_window(knowledge_base: KnowledgeBase, document: Document) -> tuple[Window, list[dict], str | None]:
    """This request's page of the document's chunks, as its knowledge base's vector store holds them."""
    page = page_number()
    try:
        store = components.vector_store(knowledge_base)
        # An indexed document's row knows its chunks; counting them in the store reads their text (a 50 MB PDF's).
        total = document.chunks_total if document.status == "indexed" else store.summary(str(document.id))["chunks"]
        window = Window(page=page, per_page=CHUNKS_PER_PAGE, total=total)
        return window, store.chunks(str(document.id), offset=window.offset, limit=window.per_page), None
    except NotInstalled as error:
        return Window(page=1, per_page=CHUNKS_PER_PAGE, total=0), [], str(error)


def document_page(knowledge_base, document, form, status: int = 200):
    window, chunks, missing = chunk_window(knowledge_base, document)
    return render_template("knowledge/document.html", kb=knowledge_base, document=document, form=form,
                           window=window, chunks=chunks, missing=missing, can_write=may("resources.write")), status


@bp.get("/<uuid:kb_id>/documents/<uuid:doc_id>")
def document(kb_id, doc_id):
    knowledge_base, found = document_or_404(kb_id, doc_id)
    return document_page(knowledge_base, found, RenameForm(formdata=None, data={"name": found.name}))


@bp.post("/<uuid:kb_id>/documents/<uuid:doc_id>/rename")
def rename_document(kb_id, doc_id):
    knowledge_base, found = document_or_404(kb_id, doc_id, "resources.write")
    form = RenameForm()
    if form.validate_on_submit():
        with show_errors(form):
            knowledge.update_document(found, {"name": (form.name.data or "").strip()})
            flash("Renamed.", "success")
            return redirect(url_for(".document", kb_id=knowledge_base.id, doc_id=found.id))
    return document_page(knowledge_base, found, form, form_status(form))


@bp.post("/<uuid:kb_id>/documents/<uuid:doc_id>/reindex")
def reindex_document(kb_id, doc_id):
    knowledge_base, found = document_or_404(kb_id, doc_id, "resources.write")
    knowledge.reindex([found])
    flash(f"Reindexing “{found.name}”: its current passages answer until it is done.", "success")
    if request.args.get("back") == "document":
        return redirect(url_for(".document", kb_id=knowledge_base.id, doc_id=found.id))
    return redirect(url_for(".show", kb_id=knowledge_base.id))


@bp.post("/<uuid:kb_id>/documents/<uuid:doc_id>/delete")
def delete_document(kb_id, doc_id):
    knowledge_base, found = document_or_404(kb_id, doc_id, "resources.write")
    name = found.name
    knowledge.delete_documents(knowledge_base, [found])
    flash(f"Deleted “{name}” and its passages.", "success")
    return redirect(url_for(".show", kb_id=knowledge_base.id))
