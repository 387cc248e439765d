"""The embeddable chat widget as the app serves it: the script at /widget.js and the demo page per bot.

What the script does in a browser is tested in test_widget_browser.py (slow: a real Chromium).
"""

from __future__ import annotations

import re
import uuid

import pytest

from privex.models import Chatbot
from tests.helpers import sign_up


@pytest.fixture()
def bot(client, database):
    owner = sign_up(client, "wanda")
    chatbot = Chatbot(workspace_id=uuid.UUID(owner.workspace_id), name="Help <b>desk</b>", config={})
    database.session.add(chatbot)
    database.session.commit()
    return chatbot


def test_the_widget_script_is_served_cacheable_and_loadable_from_any_origin(client):
    response = client.get("/widget.js")
    assert response.status_code == 200
    assert response.mimetype == "application/javascript"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Cache-Control"] == "public, max-age=300"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    script = response.get_data(as_text=True)
    for needle in ("document.currentScript", "data-bot", "data-api", "attachShadow", "/api/v1/public/bots/",
                   "text/event-stream", "getReader", "sessionStorage", "prefers-reduced-motion"):
        assert needle in script, needle
    response.close()


def test_the_widget_never_parses_markup_or_code_from_strings(client):
    """Bot answers are untrusted: the script builds every node itself and writes text with textContent only."""
    response = client.get("/widget.js")
    script = response.get_data(as_text=True)
    response.close()
    for forbidden in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
                      "EventSource"):
        assert forbidden not in script, forbidden
    # The whole script is one IIFE: nothing leaks into the page's globals.
    code = re.sub(r"/\*.*?\*/", "", script, flags=re.S).strip()
    assert code.startswith("(function () {") and code.endswith("})();")


def test_the_demo_page_embeds_the_script_for_that_bot(client, bot):
    response = client.get(f"/widget/demo/{bot.public_id}")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert f'<script src="/widget.js" data-bot="{bot.public_id}" async></script>' in page
    assert "Help &lt;b&gt;desk&lt;/b&gt;" in page and "<b>desk</b>" not in page  # the bot's name is escaped
    assert f'data-bot="{bot.public_id}" async&gt;' in page  # the snippet to copy names the bot too


def test_the_demo_page_of_an_unknown_bot_is_an_html_404(client):
    response = client.get("/widget/demo/bot_doesnotexist")
    assert response.status_code == 404
    assert response.mimetype == "text/html"


@pytest.mark.parametrize("status", ["draft", "paused", "archived"])
def test_only_a_live_bot_has_a_demo_page(client, bot, database, status):
    bot.status = status
    database.session.commit()
    response = client.get(f"/widget/demo/{bot.public_id}")
    assert response.status_code == 404 and response.mimetype == "text/html"
