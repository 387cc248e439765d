"""Answers as the API gives them, whichever route asked: a whole JSON answer, or server-sent events as the model
writes it. The turn itself is ``privex.services.conversations.respond``."""

from __future__ import annotations

import json

from flask import Response, stream_with_context
from marshmallow import Schema, fields

from privex.models import ChatSession
from privex.services import conversations


class AnswerSchema(Schema):
    session_id = fields.String()
    message_id = fields.String()
    answer = fields.String()
    citations = fields.List(fields.Dict())
    usage = fields.Dict()
    latency_ms = fields.Integer()


# One server-sent event as OpenAPI describes a text/event-stream response's items: its type, and itself as JSON.
SSE_EVENT = {"type": "object", "required": ["event", "data"], "properties": {
    "event": {"type": "string", "enum": ["delta", "citations", "done", "error"]},
    "data": {"type": "string", "description": "the event as JSON: `type` and, by type, `text`; `citations`; "
                                              "`message_id`, `usage`, `latency_ms`, `session_id`; `code`, `message`"}}}


def sse(events) -> Response:
    """Server-sent events: ``event: <type>`` and the event as JSON, flushed one by one."""

    def lines():
        for event in events:
            yield f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"

    return Response(stream_with_context(lines()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def answer(bot: conversations.Bot, session: ChatSession | conversations.SessionRow, payload: dict):
    """A turn answered as JSON, or streamed as server-sent events when the payload asks for ``stream``."""
    session_id = str(session.id)  # the stream is read after the request's database session has closed
    events = conversations.respond(bot, session, payload["message"])
    if payload.get("stream"):
        return sse(({**event, "session_id": session_id} if event["type"] == "done" else event) for event in events)
    return {"session_id": session_id, **conversations.gather(events)}


def test_chat(bot: conversations.Bot, payload: dict):
    return answer(bot, conversations.test_session(bot, payload.get("session_id")), payload)
