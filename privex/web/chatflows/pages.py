"""The chatflow list, a new chatflow, the canvas page, and the actions on its versions (publish, roll back), the sites
allowed to show it, and deleting it.

Publishing and rolling back are plain forms (post, redirect, get); the canvas script saves the graph first when it
has unsaved changes, so what is published is what the person sees.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_login import current_user

from privex.models import Chatflow
from privex.services.chatflows import runtime, store
from privex.services.errors import Invalid
from privex.urls import public_url
from privex.web.chatbots.deploy import by_line
from privex.web.chatbots.forms import OriginsForm
from privex.web.chatflows import bp
from privex.web.chatflows.forms import NewChatflowForm, PublishForm, RollbackForm
from privex.web.chatflows.schema_form import code_spans, palette, starter_config, type_label
from privex.web.forms import form_status, show_errors
from privex.web.shell import may, paginate, resource_or_404, workspace_for

PER_PAGE = 20

bp.add_app_template_filter(code_spans, "code_spans")


@bp.get("")
def index():
    """The workspace's chatflows, newest first."""
    workspace = workspace_for("resources.read")
    page = paginate(store.listing(workspace), PER_PAGE)
    return render_template("chatflows/index.html", page=page, can_write=may("resources.write"))


@bp.route("/new", methods=["GET", "POST"])
def new():
    """Name a new chatflow; it starts as a working graph (start -> response) and the canvas opens on it."""
    workspace = workspace_for("resources.write")
    form = NewChatflowForm()
    if form.validate_on_submit():
        with show_errors(form):
            chatflow = store.create(workspace, current_user, **form.values())
            flash(f"“{chatflow.name}” is created. Add nodes from the palette, connect them, then save and test.",
                  "success")
            return redirect(url_for(".canvas", chatflow_id=chatflow.id))
    return render_template("chatflows/new.html", form=form), form_status(form)


@bp.get("/<chatflow_id>")
def canvas(chatflow_id):
    return render_canvas(resource_or_404(Chatflow, chatflow_id))


@bp.post("/<chatflow_id>/publish")
def publish(chatflow_id):
    """Publish the saved working copy as the next version and deploy it."""
    chatflow = resource_or_404(Chatflow, chatflow_id, "resources.write")
    form = PublishForm()
    if form.validate_on_submit():
        with show_errors(form):
            version = store.publish(workspace_for("resources.write"), chatflow, current_user,
                                    note=(form.note.data or "").strip() or None)
            flash(f"Version {version.number} is published: the widget and the API answer with it now.", "success")
            return redirect(url_for(".canvas", chatflow_id=chatflow.id) + "#versions")
    return render_canvas(chatflow, publish_form=form), form_status(form)


@bp.post("/<chatflow_id>/rollback")
def rollback(chatflow_id):
    """Deploy an earlier version again; the graph being edited stays as it is."""
    chatflow = resource_or_404(Chatflow, chatflow_id, "resources.write")
    form = RollbackForm()
    if form.validate_on_submit():
        with show_errors(form):
            version = store.rollback(workspace_for("resources.write"), chatflow, form.number.data)
            flash(f"Version {version.number} is deployed again. What you are editing did not change.", "success")
            return redirect(url_for(".canvas", chatflow_id=chatflow.id) + "#versions")
    flash(" ".join(message for errors in form.errors.values() for message in errors) or
          "That version could not be deployed.", "error")
    return redirect(url_for(".canvas", chatflow_id=chatflow.id) + "#versions")


@bp.post("/<chatflow_id>/origins")
def save_origins(chatflow_id):
    """The sites (origins) whose pages may show the widget with this chatflow: the same setting as a chatbot's."""
    chatflow = resource_or_404(Chatflow, chatflow_id, "resources.write")
    form = OriginsForm()
    if form.validate_on_submit():
        with show_errors(form):
            try:
                store.update(workspace_for("resources.write"), chatflow, config=form.changes()["config"])
            except Invalid as error:
                raise by_line(error, form.origins()) from error
            flash("Allowed sites saved.", "success")
            return redirect(url_for(".canvas", chatflow_id=chatflow.id) + "#deploy")
    return render_canvas(chatflow, origins=form), form_status(form)


@bp.post("/<chatflow_id>/delete")
def delete(chatflow_id):
    chatflow = resource_or_404(Chatflow, chatflow_id, "resources.write")
    name = chatflow.name
    store.delete(workspace_for("resources.write"), chatflow)
    flash(f"“{name}” was deleted with its versions.", "success")
    return redirect(url_for(".index"))


def catalogue_for_canvas() -> list[dict]:
    """Every installed node type as the canvas script needs it: ports, label and the settings a new one gets."""
    return [{"type": entry["type"], "version": entry.get("version"), "role": entry.get("role"),
             "label": type_label(entry["type"]), "inputs": list(entry.get("inputs") or ()),
             "outputs": list(entry.get("outputs") or ()), "description": entry.get("description") or "",
             "starter": starter_config(entry.get("config_schema") or {})} for entry in runtime.catalogue()]


def render_canvas(chatflow: Chatflow, *, publish_form=None, origins=None):
    workspace = workspace_for("resources.read")
    types = catalogue_for_canvas()
    graph = {"nodes": chatflow.nodes or [], "edges": chatflow.edges or []}
    problems = store.problems(graph["nodes"], graph["edges"])
    return render_template(
        "chatflows/canvas.html", chatflow=chatflow, groups=palette(types), can_write=may("resources.write"),
        boot={"graph": graph, "types": types, "problems": problems},
        versions=store.versions(chatflow), publish_form=publish_form or PublishForm(formdata=None),
        rollback_form=RollbackForm(formdata=None), workspace=workspace,
        origins=origins or OriginsForm(formdata=None, data={
            "allowed_origins": "\n".join((chatflow.config or {}).get("allowed_origins") or [])}),
        widget_src=public_url(url_for("web.widget.widget_js")))
