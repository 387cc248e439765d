"""Knowledge bases: your documents, ready for your chatbots to answer from.

A placeholder of the shell (the page says the area is coming), so the navigation and the first-run guide link
somewhere real; the knowledge area replaces this module and ``templates/knowledge/``.
"""

from __future__ import annotations

from flask import Blueprint, render_template

from privex.web.shell import NavEntry, workspace_for

bp = Blueprint("knowledge", __name__, url_prefix="/knowledge")
NAV = NavEntry("Knowledge", "web.knowledge.index", order=20)


@bp.get("")
def index():
    return render_template("knowledge/index.html", workspace=workspace_for("resources.read"))
