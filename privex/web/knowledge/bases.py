"""The list of knowledge bases, a knowledge base's documents, its test retrieval panel and its settings; reindexing
and deleting it."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from privex.extensions import state
from privex.models import Document, KnowledgeBase
from privex.plugins import NotInstalled
from privex.services import knowledge, retrieval
from privex.services import drafts as kb_drafts
from privex.services.errors import ServiceError
from privex.web.forms import form_status, show_errors
from privex.web.knowledge import BUSY, bp, forget_draft, remembered_drafts
from privex.web.knowledge.forms import SearchForm, details, details_form, details_of
from privex.web.shell import may, paginate, resource_or_404, scoped, workspace_for

BASES_PER_PAGE = 20
DOCUMENTS_PER_PAGE = 50


@bp.get("")
def index():
    workspace = workspace_for("resources.read")
    page = paginate(scoped(KnowledgeBase).order_by(KnowledgeBase.name, KnowledgeBase.id), BASES_PER_PAGE)
    counts = knowledge.document_counts([knowledge_base.id for knowledge_base in page.items])
    return render_template("knowledge/index.html", page=page, counts=counts,
                           drafts=unfinished_drafts(workspace) if may("resources.write") else [])


def unfinished_drafts(workspace) -> list[dict]:
    """This browser's drafts that still wait to be finished (expired or finalized ones are forgotten)."""
    found = []
    for draft_id in remembered_drafts(workspace.id):
        try:
            found.append(kb_drafts.get(workspace, draft_id))
        except ServiceError:
            forget_draft(draft_id)
    return found


# -- one knowledge base --------------------------------------------------------------------------------------------

def summary(knowledge_base: KnowledgeBase) -> dict:
    """Documents per status and their passages (from the documents' rows: no chunk is read, so a page polled every
    1.5 s stays cheap on a large knowledge base); ``missing`` names a plugin it was made with that is not installed."""
    counts = knowledge.document_counts([knowledge_base.id])[knowledge_base.id]
    plugins, missing = state().plugins, None
    for registry, name in ((plugins.vector_stores, knowledge_base.vector_store),
                           (plugins.embedding_models, knowledge_base.embedding_model)):
        try:
            registry[name]
        except NotInstalled as error:
            missing = str(error)
    return {**counts, "busy": sum(counts["statuses"][status] for status in BUSY), "missing": missing}


def documents_page(knowledge_base: KnowledgeBase, total: int):
    """This request's page of the documents, newest first (``total`` is known from the summary: no count query)."""
    statement = scoped(Document).where(Document.knowledge_base_id == knowledge_base.id).order_by(
        Document.created_at.desc(), Document.name, Document.id)
    page = paginate(statement, DOCUMENTS_PER_PAGE, count=False)
    page.total = total
    return page


@bp.get("/<uuid:kb_id>")
def show(kb_id, upload_error: str | None = None, status: int = 200):
    """The documents with their live status; to an htmx request (the drop zone's refresh), the list alone."""
    knowledge_base = resource_or_404(KnowledgeBase, kb_id)
    counts = summary(knowledge_base)
    page = documents_page(knowledge_base, counts["documents"])
    context = {"kb": knowledge_base, "page": page, "summary": counts, "upload_error": upload_error,
               "can_write": may("resources.write")}
    if request.htmx and not upload_error:
        return render_template("partials/knowledge/documents.html", **context)
    return render_template("knowledge/show.html", tab="documents", **context), status


@bp.get("/<uuid:kb_id>/search")
def search(kb_id):
    """Test retrieval: a question, a mode and how many passages; the hits with what cites them."""
    knowledge_base = resource_or_404(KnowledgeBase, kb_id)
    asked = "q" in request.args
    form = SearchForm(formdata=request.args if asked else None)
    defaults = knowledge_base.retrieval_config or {}
    if not asked:
        form.mode.data = defaults.get("mode", "hybrid")
    result = None
    if asked and form.validate():
        with show_errors(form, fields={"query": "q"}):
            result = retrieval.search(knowledge_base, form.q.data or "", mode=form.mode.data or None,
                                      top_k=form.top_k.data)
    return render_template("knowledge/search.html", tab="search", kb=knowledge_base, form=form, result=result,
                           summary=summary(knowledge_base), default_top_k=defaults.get("top_k", 5)), \
        form_status(form)


@bp.route("/<uuid:kb_id>/settings", methods=["GET", "POST"])
def settings(kb_id):
    """Rename, describe, change the chunker (it applies to documents as they are reindexed)."""
    knowledge_base = resource_or_404(KnowledgeBase, kb_id, "resources.write" if request.method == "POST"
                                     else "resources.read")
    form = details_form(knowledge_base.chunking_strategy,
                        data=None if request.method == "POST" else details_of(
                            {column: getattr(knowledge_base, column) for column in knowledge.SETTINGS}))
    if request.method == "POST" and form.validate():
        before = (knowledge_base.chunking_strategy, dict(knowledge_base.chunking_config or {}))
        with show_errors(form):
            knowledge.update(knowledge_base, details(form))
            changed = before != (knowledge_base.chunking_strategy, dict(knowledge_base.chunking_config or {}))
            flash("Saved. The new way of splitting applies to documents as they are reindexed: reindex them all "
                  "from the Documents tab when you are ready." if changed else "Saved.", "success")
            return redirect(url_for(".settings", kb_id=knowledge_base.id))
    return render_template("knowledge/settings.html", tab="settings", kb=knowledge_base, form=form,
                           summary=summary(knowledge_base), can_write=may("resources.write")), form_status(form)


@bp.post("/<uuid:kb_id>/reindex")
def reindex(kb_id):
    knowledge_base = resource_or_404(KnowledgeBase, kb_id, "resources.write")
    queued = knowledge.reindex_knowledge_base(knowledge_base)
    flash(f"Reindexing {queued} document{'s' if queued != 1 else ''}: the current passages answer until each is "
          f"done." if queued else "There are no documents to reindex.", "success")
    return redirect(url_for(".show", kb_id=knowledge_base.id))


@bp.post("/<uuid:kb_id>/delete")
def delete(kb_id):
    knowledge_base = resource_or_404(KnowledgeBase, kb_id, "resources.write")
    name = knowledge_base.name
    knowledge.delete_knowledge_base(knowledge_base)
    flash(f"Deleted the knowledge base “{name}” with its documents.", "success")
    return redirect(url_for(".index"))

