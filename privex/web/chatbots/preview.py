"""The builder's preview chat: one turn of a test conversation (``conversations.respond`` on a
``conversations.test_session``), streamed as server-sent events exactly as the API streams them — ``event: delta``
(``{"type": "delta", "text"}``), ``citations``, ``done`` (with the ``session_id`` to continue) — and ``error`` for a
refusal (before the first event: answered with the refusal's status) or a model that stops half-way.

Session-authenticated and CSRF-protected like every page: ``static/chatbots.js`` posts JSON with the
``X-CSRFToken`` header and reads the stream with a ``ReadableStream`` reader. Test conversations stay out of the
bot's analytics and skip its lead form and its own rate limit (the organization's still applies).
"""

from __future__ import annotations

import json
import uuid

from flask import Response, request, stream_with_context
from werkzeug.datastructures import MultiDict

from privex.extensions import db
from privex.models import Chatbot
from privex.services import conversations
from privex.services.errors import Invalid, NotFound, ServiceError
from privex.statuses import status_of
from privex.web.chatbots import bp
from privex.web.chatbots.forms import PreviewForm
from privex.web.shell import resource_or_404


@bp.post("/<chatbot_id>/preview")
def preview(chatbot_id):
    """Ask the bot as it is saved now; the answer streams back as server-sent events."""
    chatbot = resource_or_404(Chatbot, chatbot_id, "resources.write")
    try:
        form = PreviewForm(formdata=posted())
        if not form.validate():
            problems = {name: errors for name, errors in form.errors.items() if name != "csrf_token"}
            raise Invalid("; ".join(message for errors in problems.values() for message in errors), errors=problems)
        bot = conversations.saved_bot(chatbot)
        session = conversations.test_session(bot, continued(form.session_id.data))
        session_id = str(session.id)  # the stream is read after the request's database session has closed
        events = conversations.respond(bot, session, form.message.data or "")
    except ServiceError as error:
        db.session.rollback()
        refusal = {"type": "error", "code": status_of(error), "message": error.message, "errors": error.errors}
        return stream([refusal], status=status_of(error))
    return stream({**event, "session_id": session_id} if event["type"] == "done" else event for event in events)


def posted() -> MultiDict | None:
    """The question as form data: the page's script sends a JSON object (``message``, ``session_id``), a form post
    its fields. Anything else is refused before a form reads it."""
    if not request.is_json:
        return None  # the form reads request.form
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Invalid("send a JSON object with your message", errors={"message": ["required"]})
    wrong = {key: ["must be text"] for key in ("message", "session_id")
             if body.get(key) is not None and not isinstance(body[key], str)}
    if wrong:
        raise Invalid("; ".join(f"{key} must be text" for key in wrong), errors=wrong)
    return MultiDict({key: body[key] for key in ("message", "session_id") if body.get(key) is not None})


def continued(session_id: str | None):
    """The test conversation to continue, by id; None starts a new one."""
    if not session_id:
        return None
    try:
        return uuid.UUID(session_id)
    except ValueError:
        raise NotFound("Test session not found.", errors={"session_id": ["no test conversation of this bot"]}) \
            from None


def stream(events, status: int = 200) -> Response:
    """Server-sent events, ``event: <type>`` and the event as JSON, flushed one by one."""

    def lines():
        for event in events:
            yield f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"

    return Response(stream_with_context(lines()), status=status, mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
