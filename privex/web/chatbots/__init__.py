"""Chatbots: build a chatbot on your knowledge step by step, try it in a live preview, put it on your site, and read
its conversations.

A new bot is saved at once as a chatbot with status ``draft`` (``services.chatbots.create``), not as a Redis draft
(``services.chatbots.new_draft``): a Redis draft expires ``PRIVEX_DRAFT_HOURS`` after its last change and is listed
nowhere, while someone building a bot in the browser leaves and comes back days later. A draft bot is in the list,
is not live (the widget and the public API refuse it), and each step saves into it with ``services.chatbots.update``
— the same pages and the same one save before and after publishing. Publishing sets its status to ``active``.

Modules:

- ``builder``: the list, a new bot, the six steps (instructions, knowledge, model, behaviour, lead capture,
  appearance), each its own small form saved in one round trip, with the preview beside them;
- ``preview``: the preview chat's server-sent events (``conversations.respond`` on a test session);
- ``deploy``: publish / pause / resume, the widget snippet, allowed origins, API keys and examples, delete;
- ``history``: conversations, one conversation, and the analytics card;
- ``forms``: the forms of all of them.

Templates: ``templates/chatbots/`` (pages) and ``templates/partials/chatbots/`` (a step's form, the preview, the
analytics card); the preview's script is ``static/chatbots.js``.
"""

from __future__ import annotations

from flask import Blueprint

from privex.web.shell import NavEntry

bp = Blueprint("chatbots", __name__, url_prefix="/chatbots")
NAV = NavEntry("Chatbots", "web.chatbots.index", order=30)

from privex.web.chatbots import builder, deploy, history, preview  # noqa: E402,F401  (their routes are on bp)
