"""The landing page, the app's home with its first-run guide, and the organization/workspace switcher."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from flask import Blueprint, current_app, redirect, render_template, request, send_from_directory, url_for
from flask_login import current_user

from privex.extensions import db
from privex.models import Chatbot, KnowledgeBase
from privex.services.errors import Invalid
from privex.web.shell import NavEntry, here, may, nav_entries, public_page, scoped, switch_to, workspace_for

bp = Blueprint("home", __name__)
NAV = NavEntry("Home", "web.home.app", order=10)


@bp.get("/")
@public_page
def index():
    """What PrivexBot is, for someone signed out; a signed-in person goes straight to work."""
    if current_user.is_authenticated:
        return redirect(url_for(".app"))
    return render_template("home/landing.html")


def count(model) -> int:
    return db.session.scalar(scoped(model).with_only_columns(sa.func.count()))


@bp.get("/app")
def app():
    """Home: the first-run guide until the workspace has a chatbot, then what it holds."""
    place = here()
    counts = None
    if place.workspace is not None:
        workspace_for("resources.read")
        counts = {"knowledge_bases": count(KnowledgeBase), "chatbots": count(Chatbot)}
    return render_template("home/app.html", place=place, counts=counts, can_write=may("resources.write"))


@bp.post("/context")
def switch():
    """Work in another organization or workspace (the header's switcher); back to the same area of the app.

    The switcher's one select sends ``context=<organization id>/<workspace id>``; with nothing after the slash, the
    organization's first workspace the person can open."""
    organization_id, _, workspace_id = (request.form.get("context") or "").partition("/")
    try:
        organization_id = uuid.UUID(organization_id)
        workspace_id = uuid.UUID(workspace_id) if workspace_id else None
    except ValueError:
        raise Invalid("choose an organization and workspace from the list") from None
    switch_to(current_user.id, organization_id, workspace_id)
    return redirect(_same_area(request.form.get("next")))


def _same_area(path: str | None) -> str:
    """The area's own page for ``path`` (a page of a resource of the old workspace would be a 404 now)."""
    for entry in nav_entries():
        prefix = entry.prefix or entry.url()
        if path and (path == prefix or path.startswith(prefix.rstrip("/") + "/")):
            return entry.url()
    return url_for(".app")


@bp.get("/favicon.ico")
@public_page
def favicon():
    """Browsers and tools that ask for /favicon.ico get our SVG icon (pages link it themselves)."""
    return send_from_directory(current_app.static_folder, "favicon.svg", mimetype="image/svg+xml", max_age=86400)
