"""A new knowledge base, through a draft (``services.drafts``): its details first, then its sources — files, a web
site, Notion pages, Google Docs — a preview of the passages a source makes, and the knowledge base itself once the
person is happy. Nothing is indexed until then; the draft waits in Redis for ``PRIVEX_DRAFT_HOURS``."""

from __future__ import annotations

from flask import current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from privex.extensions import db, state
from privex.models import Credential
from privex.services import drafts as kb_drafts
from privex.services import knowledge
from privex.services.errors import Conflict, ServiceError
from privex.statuses import status_of
from privex.web.forms import form_status, show_errors
from privex.web.knowledge import bp, credentials_url, forget_draft, json_refusal, remember_draft, wants_json
from privex.web.knowledge.documents import chosen_files
from privex.web.knowledge.forms import (DEFAULT_CHUNKER, CrawlForm, GoogleDocsForm, NotionForm, PreviewForm,
                                        chunker_choices, credential_choices, details, details_form,
                                        details_of, source_errors)
from privex.web.shell import may, scoped, workspace_for

SOURCE_NAMES = {"upload": "File", "web": "Web site", "notion": "Notion", "google_docs": "Google Docs"}


@bp.route("/new", methods=["GET", "POST"])
def new():
    """Step 1: name it, with the defaults explained; the chunker can be changed under “Advanced”."""
    workspace = workspace_for("resources.write")
    form = details_form()
    if form.validate_on_submit():
        with show_errors(form):
            draft = kb_drafts.create(workspace, current_user.id, details(form))
            remember_draft(workspace.id, draft["id"])
            return redirect(url_for(".draft", draft_id=draft["id"]))
    return render_template("knowledge/new.html", form=form, defaults=defaults()), form_status(form)


def defaults() -> dict:
    """What a new knowledge base is made with, for the page to explain."""
    plugins = state().plugins
    settings = knowledge.DEFAULTS
    try:
        model = plugins.embedding_models[settings["embedding_model"]]
    except LookupError:
        model = None
    try:
        properties = plugins.chunkers[DEFAULT_CHUNKER].config_schema["properties"]
    except (LookupError, AttributeError, KeyError, TypeError):
        properties = {}
    return {"embedding_model": settings["embedding_model"], "dimension": getattr(model, "dimension", None),
            "local": getattr(model, "local", False), "vector_store": settings["vector_store"],
            "sizes": {key: spec["default"] for key, spec in properties.items() if "default" in spec}}


@bp.get("/chunker-settings")
def chunker_settings():
    """The settings of the chunker just chosen in a details form (htmx swaps them in as the choice changes)."""
    workspace_for("resources.read")
    prefix = request.args.get("prefix", "details")
    if not prefix.isidentifier():
        prefix = "details"
    strategy = request.args.get(f"{prefix}-chunking_strategy") or DEFAULT_CHUNKER
    form = details_form(strategy, prefix=prefix, formdata=None, data={"chunking_strategy": strategy})
    return render_template("partials/knowledge/chunker_settings.html", form=form)


# -- the draft -----------------------------------------------------------------------------------------------------

def open_draft(draft_id, action: str = "resources.read"):
    """The workspace and the draft; a finalized draft sends the person to its knowledge base."""
    workspace = workspace_for(action)
    try:
        return workspace, kb_drafts.get(workspace, draft_id), None
    except Conflict as error:
        made = (error.errors.get("knowledge_base_id") or [None])[0]
        forget_draft(draft_id)
        if made is None:
            raise
        return workspace, None, redirect(url_for(".show", kb_id=made))


def draft_page(workspace, draft: dict, status: int = 200, **forms):
    """The draft's page; ``forms`` holds the one form just sent (with its errors), the others start afresh."""
    credentials = db.session.scalars(scoped(Credential).order_by(Credential.name, Credential.id)).all()
    choices = credential_choices(credentials)
    settings = draft["settings"]
    made = {
        "details": lambda: details_form(settings["chunking_strategy"], formdata=None, data=details_of(settings)),
        "web": lambda: CrawlForm(prefix="web", formdata=None),
        "notion": lambda: NotionForm(prefix="notion", formdata=None),
        "google": lambda: GoogleDocsForm(prefix="google", formdata=None),
        "preview": lambda: PreviewForm(prefix="preview", formdata=None,
                                       data={"chunking_strategy": settings["chunking_strategy"]}),
    }
    built = {name: forms.get(name) or make() for name, make in made.items()}
    for name in ("notion", "google"):
        built[name].credential_id.choices = choices
    built["preview"].source_id.choices = source_choices(draft)
    built["preview"].chunking_strategy.choices = chunker_choices()
    context = {"draft": draft, "draft_forms": built, "credentials": credentials, "credentials_url": credentials_url(),
               "source_names": SOURCE_NAMES, "can_write": may("resources.write"),
               "allow_private": current_app.config.get("ALLOW_PRIVATE_SOURCES"),
               "preview": forms.get("preview_result"), "opened": forms.get("opened"),
               "upload_error": forms.get("upload_error"),
               "max_upload_mb": current_app.config["MAX_UPLOAD_MB"]}
    if request.htmx and not forms:
        return render_template("partials/knowledge/draft_refresh.html", **context)
    return render_template("knowledge/draft.html", **context), status


def source_choices(draft: dict) -> list[SelectChoice]:
    return [SelectChoice(source["id"], source["name"]) for source in draft["sources"]]


@bp.get("/drafts/<uuid:draft_id>")
def draft(draft_id):
    """Step 2: the sources, their preview, and creating the knowledge base (to htmx: the sources list alone)."""
    workspace, found, elsewhere = open_draft(draft_id)
    return elsewhere or draft_page(workspace, found)


@bp.post("/drafts/<uuid:draft_id>/details")
def update_draft(draft_id):
    workspace, found, elsewhere = open_draft(draft_id, "resources.write")
    if elsewhere:
        return elsewhere
    form = details_form(found["settings"]["chunking_strategy"])
    if form.validate_on_submit():
        with show_errors(form):
            with kb_drafts.changing(workspace, draft_id) as changed:
                kb_drafts.update(changed, details(form))
            flash("Saved the draft’s details.", "success")
            return redirect(url_for(".draft", draft_id=draft_id))
    return draft_page(workspace, found, form_status(form), details=form, opened="details")


@bp.post("/drafts/<uuid:draft_id>/files")
def draft_upload(draft_id):
    """Files for the draft: kept aside until the knowledge base is created (JSON to the drop zone's script)."""
    workspace, found, elsewhere = open_draft(draft_id, "resources.write")
    if elsewhere:
        return elsewhere
    try:
        added = kb_drafts.add_uploads(workspace, draft_id, chosen_files())
    except ServiceError as error:
        db.session.rollback()
        if wants_json():
            return json_refusal(error)
        return draft_page(workspace, kb_drafts.get(workspace, draft_id), status_of(error), upload_error=error.message)
    if wants_json():
        return jsonify({"sources": [{"id": source["id"], "name": source["name"]} for source in added]}), 201
    flash(f"Added {', '.join(source['name'] for source in added)}.", "success")
    return redirect(url_for(".draft", draft_id=draft_id) + "#sources")


def add_source(draft_id, form_name: str, connector: str, default_field: str):
    """Add a connector's source from its form: each refusal beside the field it is about."""
    workspace, found, elsewhere = open_draft(draft_id, "resources.write")
    if elsewhere:
        return elsewhere
    form = {"web": CrawlForm, "notion": NotionForm, "google": GoogleDocsForm}[form_name](prefix=form_name)
    if form_name != "web":
        form.credential_id.choices = credential_choices(
            db.session.scalars(scoped(Credential).order_by(Credential.name)).all())
    if form.validate_on_submit():
        source = form.source(bool(current_app.config.get("ALLOW_PRIVATE_SOURCES")))
        with show_errors(form, fields={None: default_field}):
            with source_errors(form, default_field):
                added = kb_drafts.add_connector_source(workspace, draft_id, connector, source)
            flash(f"Added {added['name']}: it is read when the knowledge base is created.", "success")
            return redirect(url_for(".draft", draft_id=draft_id) + "#sources")
    return draft_page(workspace, found, form_status(form), **{form_name: form, "opened": form_name})


@bp.post("/drafts/<uuid:draft_id>/web")
def add_web_site(draft_id):
    return add_source(draft_id, "web", "web", "url")


@bp.post("/drafts/<uuid:draft_id>/notion")
def add_notion(draft_id):
    return add_source(draft_id, "notion", "notion", "page_ids")


@bp.post("/drafts/<uuid:draft_id>/google-docs")
def add_google_docs(draft_id):
    return add_source(draft_id, "google", "google_docs", "document_ids")


@bp.post("/drafts/<uuid:draft_id>/sources/<uuid:source_id>/remove")
def remove_source(draft_id, source_id):
    workspace, found, elsewhere = open_draft(draft_id, "resources.write")
    if elsewhere:
        return elsewhere
    name = next((source["name"] for source in found["sources"] if source["id"] == str(source_id)), None)
    kb_drafts.remove_source(workspace, draft_id, source_id)
    flash(f"Removed {name}.", "success")
    return redirect(url_for(".draft", draft_id=draft_id) + "#sources")


@bp.get("/drafts/<uuid:draft_id>/preview")
def preview(draft_id):
    """The passages a source is split into, before anything is saved (a GET: it changes nothing). For editors, as
    on the API: reading a Notion or Google source uses the workspace's credential."""
    workspace, found, elsewhere = open_draft(draft_id, "resources.write")
    if elsewhere:
        return elsewhere
    form = PreviewForm(prefix="preview", formdata=request.args)
    form.source_id.choices = source_choices(found)
    form.chunking_strategy.choices = chunker_choices()
    result = None
    if form.validate():
        with show_errors(form, fields={"sources": "source_id", None: "source_id"}):
            result = kb_drafts.preview(workspace, draft_id, {"source_id": form.source_id.data or None,
                                                              "chunking_strategy": form.chunking_strategy.data})
    return draft_page(workspace, found, form_status(form), preview=form, preview_result=result, opened="preview")


@bp.post("/drafts/<uuid:draft_id>/finalize")
def finalize(draft_id):
    """Create the knowledge base from the draft and start indexing its sources."""
    workspace, found, elsewhere = open_draft(draft_id, "resources.write")
    if elsewhere:
        return elsewhere
    form = details_form(found["settings"]["chunking_strategy"], formdata=None, data=details_of(found["settings"]))
    with show_errors(form):  # a name taken beside the name; a missing file at the top
        knowledge_base, documents = kb_drafts.finalize(workspace, draft_id, current_user.id)
        knowledge.queue_ingestion(documents)
        forget_draft(draft_id)
        flash(f"Created “{knowledge_base.name}”. " + (
            f"Its {len(documents)} document{'s are' if len(documents) != 1 else ' is'} being indexed: watch "
            f"{'them' if len(documents) != 1 else 'it'} below." if documents else
            "It has no documents yet: add some below."), "success")
        return redirect(url_for(".show", kb_id=knowledge_base.id))
    return draft_page(workspace, found, form_status(form), details=form, opened="details")


@bp.post("/drafts/<uuid:draft_id>/discard")
def discard(draft_id):
    workspace, found, elsewhere = open_draft(draft_id, "resources.write")
    if elsewhere:
        return elsewhere
    kb_drafts.delete(workspace, draft_id)
    forget_draft(draft_id)
    flash(f"Discarded the draft “{found['settings']['name']}” and its files.", "success")
    return redirect(url_for(".index"))
