"""Chatbots: build a chatbot on your knowledge, try it, and put it on your site.

A placeholder of the shell (the page says the area is coming), so the navigation and the first-run guide link
somewhere real; the chatbots area replaces this module and ``templates/chatbots/``.
"""

from __future__ import annotations

from flask import Blueprint, render_template

from privex.web.shell import NavEntry, workspace_for

bp = Blueprint("chatbots", __name__, url_prefix="/chatbots")
NAV = NavEntry("Chatbots", "web.chatbots.index", order=30)


@bp.get("")
def index():
    return render_template("chatbots/index.html", workspace=workspace_for("resources.read"))
