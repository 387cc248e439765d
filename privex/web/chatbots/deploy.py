"""The deploy tab: publish, pause and resume a bot; the widget snippet to copy; the sites allowed to show it; a
key for the public API with examples filled in; the demo page; and deleting the bot.

Every address shown comes from the configured public URL (``privex.urls``), never from the request's Host header:
a snippet copied from a page reached at ``localhost`` must still point at the address visitors reach.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user

from privex.clock import now
from privex.extensions import db
from privex.models import APIKey, Chatbot
from privex.services import api_keys, chatbots
from privex.services.errors import Invalid
from privex.urls import public_url
from privex.web.chatbots import bp
from privex.web.chatbots.forms import ApiKeyForm, OriginsForm
from privex.web.forms import PageForm, form_status, show_errors
from privex.web.shell import may, resource_or_404, workspace_for

SHOWN_KEYS = 10


@bp.get("/<chatbot_id>/deploy")
def deploy(chatbot_id):
    return render_deploy(resource_or_404(Chatbot, chatbot_id))


@bp.post("/<chatbot_id>/status")
def change_status(chatbot_id):
    """Publish a draft, pause a live bot, resume a paused one."""
    chatbot = resource_or_404(Chatbot, chatbot_id, "resources.write")
    status = request.form.get("status")
    form = PageForm()
    if form.validate_on_submit():
        with show_errors(form):
            chatbots.update(workspace_for("resources.write"), chatbot, {"status": status})
            flash(STATUS_SAID.get(status, "Saved."), "success")
            return redirect(url_for(".deploy", chatbot_id=chatbot.id))
    return render_deploy(chatbot, status_form=form), form_status(form)


STATUS_SAID = {"active": "The bot is live: the widget and the API answer with it.",
               "paused": "The bot is paused: the widget and the API refuse to chat until you resume it."}


@bp.post("/<chatbot_id>/origins")
def save_origins(chatbot_id):
    """The sites (origins) whose pages may show the widget."""
    chatbot = resource_or_404(Chatbot, chatbot_id, "resources.write")
    form = OriginsForm()
    if form.validate_on_submit():
        with show_errors(form):
            try:
                chatbots.update(workspace_for("resources.write"), chatbot, form.changes())
            except Invalid as error:
                raise by_line(error, form.origins()) from error
            flash("Allowed sites saved.", "success")
            return redirect(url_for(".deploy", chatbot_id=chatbot.id) + "#sites")
    return render_deploy(chatbot, origins=form), form_status(form)


def by_line(error: Invalid, origins: list[str]) -> Invalid:
    """The service names a refused origin by its index in the list; the person reads the line and what it says."""
    found = ((error.errors or {}).get("config") or {}).get("allowed_origins") if isinstance(error.errors,
                                                                                            dict) else None
    if not isinstance(found, dict):
        return error
    lines = []
    for index, messages in sorted(found.items(), key=lambda item: int(item[0])):
        value = origins[int(index)] if int(index) < len(origins) else ""
        lines.extend(f"line {int(index) + 1} (“{value}”): {message}" for message in messages)
    return Invalid(error.message, errors={"allowed_origins": lines})


@bp.post("/<chatbot_id>/api-key")
def create_key(chatbot_id):
    """A key with the ``chat`` permission for the public API; its secret is shown on this answer only."""
    chatbot = resource_or_404(Chatbot, chatbot_id)
    workspace = workspace_for("api_keys.create")
    form = ApiKeyForm()
    secret = None
    if form.validate_on_submit():
        with show_errors(form):
            key, secret = api_keys.create(workspace, current_user, (form.name.data or "").strip(), ["chat"])
            flash(f"Key “{key.name}” created. Copy it now: it is shown only this once.", "success")
    response = make_response(render_deploy(chatbot, key_form=None if secret else form, secret=secret),
                             form_status(form))
    response.headers["Cache-Control"] = "no-store"  # the secret must not be kept by the browser or a proxy
    return response


@bp.post("/<chatbot_id>/delete")
def delete(chatbot_id):
    chatbot = resource_or_404(Chatbot, chatbot_id, "resources.write")
    name = chatbot.name
    chatbots.delete(chatbot)
    flash(f"“{name}” was deleted with its conversations.", "success")
    return redirect(url_for(".index"))


def render_deploy(chatbot: Chatbot, *, origins=None, key_form=None, secret=None, status_form=None):
    """The deploy tab; the forms given are shown as they are (refused, or just used)."""
    if origins is None:
        origins = OriginsForm(formdata=None, data={
            "allowed_origins": "\n".join(chatbot.config.get("allowed_origins") or [])})
    key_form = key_form or ApiKeyForm(formdata=None, data={"name": f"{chatbot.name} (chat)"[:120]})
    can_keys = may("api_keys.create")
    keys = db.session.scalars(api_keys.listed(workspace_for("resources.read")).where(
        APIKey.revoked_at.is_(None), sa.or_(APIKey.expires_at.is_(None), APIKey.expires_at > now()),
        APIKey.permissions.contains(["chat"])).order_by(None)
        .order_by(APIKey.created_at.desc()).limit(SHOWN_KEYS)).all() if may("api_keys.read") else []
    api_base = public_url(url_for("public.PublicBot", public_id=chatbot.public_id))
    return render_template(
        "chatbots/deploy.html", chatbot=chatbot, origins=origins, key_form=key_form, secret=secret,
        status_form=status_form or PageForm(formdata=None), keys=keys, can_write=may("resources.write"),
        can_keys=can_keys, widget_src=public_url(url_for("web.widget.widget_js")), api_base=api_base,
        demo_url=url_for("web.widget.demo", public_id=chatbot.public_id))
