"""The embeddable chat widget's script, and a demo page carrying it for trying a bot on this site.

The widget itself talks only to the public chat API (docs/public-api.md), which is exempt from CSRF: it
authenticates by API key or by the page's origin, never by cookie.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template, send_from_directory, url_for

from privex.services import conversations
from privex.services.errors import NotFound
from privex.urls import public_url
from privex.web.shell import public_page

bp = Blueprint("widget", __name__)


@bp.get("/widget.js")
@public_page
def widget_js():
    """The chat widget, embedded on any site: cacheable for five minutes, loadable from every origin."""
    response = send_from_directory(current_app.static_folder, "widget.js", mimetype="application/javascript",
                                   max_age=300)
    response.headers["Cache-Control"] = "public, max-age=300"
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/widget/demo/<public_id>")
@public_page
def demo(public_id: str):
    """A plain page carrying the widget for one bot, on the app's own origin, to try the bot before embedding it."""
    try:
        bot = conversations.live_bot(public_id)  # as on the public API: only a live bot or published flow chats
    except NotFound:
        abort(404)
    # The snippet names the configured address (PRIVEX_PUBLIC_URL), never the Host header this request came with.
    return render_template("widget/demo.html", bot=bot, widget_src=public_url(url_for("web.widget.widget_js")))
