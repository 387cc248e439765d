"""The public chat API a widget or a customer's server calls: a bot's public config, sessions, messages (streamed or
not), feedback and leads. See docs/public-api.md.

Authorized per bot, on every route, the bot's public settings included: an API key of the bot's workspace with the
`chat` or `write` permission (any origin), or a browser on one of the bot's `allowed_origins` (or this app's own
pages). CORS headers are answered per bot. The conversation itself is ``privex.services.conversations``.
"""

from __future__ import annotations

import functools
from typing import Callable

import sqlalchemy as sa
from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from privex.api.answers import SSE_EVENT, AnswerSchema, answer
from privex.extensions import db
from privex.models import Chatbot
from privex.services import conversations, leads
from privex.services.errors import Forbidden, NotAuthenticated
from privex.tenancy.context import Caller, api_key_caller, key_caller, public
from privex.urls import public_origin

blp = Blueprint("public", __name__, url_prefix="/public/bots", description="Public chat API (widget, servers)")
CHAT_SCOPES = {"chat", "write"}


class PublicConfigSchema(Schema):
    public_id = fields.String()
    name = fields.String()
    welcome_message = fields.String()
    citations = fields.Boolean()
    lead_capture = fields.Dict()
    appearance = fields.Dict()


class SessionStartSchema(Schema):
    external_user_id = fields.String(validate=validate.Length(max=255), allow_none=True)
    metadata = fields.Dict(load_default=dict)


class SessionStartedSchema(Schema):
    session_id = fields.String()
    welcome_message = fields.String()


class MessageInSchema(Schema):
    message = fields.String(required=True, validate=validate.Length(min=1, max=4000))
    stream = fields.Boolean(load_default=False)


class FeedbackSchema(Schema):
    rating = fields.Integer(required=True, validate=validate.OneOf([1, -1]))
    comment = fields.String(allow_none=True, validate=validate.Length(max=2000))


class FeedbackOutSchema(Schema):
    message_id = fields.String()
    rating = fields.Integer()


class LeadInSchema(Schema):
    session_id = fields.UUID(required=True)
    email = fields.String(allow_none=True, validate=validate.Length(max=255))
    name = fields.String(allow_none=True, validate=validate.Length(max=255))
    phone = fields.String(allow_none=True, validate=validate.Length(max=64))
    custom_fields = fields.Dict(load_default=dict)
    consent = fields.Boolean(load_default=False)


class LeadOutSchema(Schema):
    lead_id = fields.String()


def own_origin() -> str:
    return public_origin()  # configured: a request's Host header would let any site pass for the app's own


def calling_origin() -> str | None:
    """The site of the page calling: its Origin header, or this app's own origin for a same-origin GET (browsers
    send no Origin header there, only ``Sec-Fetch-Site: same-origin``), as the demo page makes."""
    origin = request.headers.get("Origin")
    if not origin and request.headers.get("Sec-Fetch-Site") == "same-origin":
        return own_origin()
    return origin


def allowed_origin(chatbot: Chatbot, origin: str | None) -> bool:
    return origin_in(chatbot.config.get("allowed_origins") or [], origin)


def origin_in(allowed_origins: list, origin: str | None) -> bool:
    return bool(origin) and (origin == own_origin() or origin in allowed_origins)


def sent_api_key() -> str | None:
    """The API key the request sends (``X-API-Key``, or ``Authorization: Bearer``), or None."""
    header = request.headers.get("Authorization", "")
    if request.headers.get("X-API-Key") or header.lower().startswith("bearer "):
        return (request.headers.get("X-API-Key") or header.split(" ", 1)[1]).strip()
    return None


def authorize(chatbot: Chatbot, key_caller_of: Callable[[str], Caller] = api_key_caller) -> str:
    """The channel of an allowed caller ("api" with a key, "widget" from a browser); NotAuthenticated or Forbidden
    otherwise. The bot's allowed origins are kept on the request for ``cors``, which then reads no bot again.
    ``key_caller_of`` finds the caller of the key sent: it reads the key, unless the route read it with the bot."""
    request.environ["privex.public_bot"] = (chatbot.public_id, list(chatbot.config.get("allowed_origins") or []))
    key = sent_api_key()
    if key is not None:
        who = key_caller_of(key)
        if who.workspace_id != chatbot.workspace_id or not CHAT_SCOPES & set(who.api_key.permissions):
            raise Forbidden("this API key may not chat with this bot (another workspace, or no `chat` permission)")
        return "api"
    origin = calling_origin()
    if not origin:
        raise NotAuthenticated("send an API key (`Authorization: Bearer pk_...`), or call from a site the bot allows")
    if not allowed_origin(chatbot, origin):
        raise Forbidden(f"this site ({origin}) may not use this bot: add it to the bot's allowed origins")
    return "widget"


def allowed_bot(public_id: str, *options) -> tuple[Chatbot, str]:
    """The live bot and the channel of a caller it allows (see ``authorize``)."""
    chatbot = conversations.live_bot(public_id, *options)
    return chatbot, authorize(chatbot)


def bot_origins(public_id: str) -> list:
    """The allowed origins of the bot this request authorized, or read now (a bot that does not exist: none)."""
    seen = request.environ.get("privex.public_bot")
    if seen is not None and seen[0] == public_id:
        return seen[1]
    chatbot = db.session.scalar(sa.select(Chatbot).where(Chatbot.public_id == public_id))
    return (chatbot.config.get("allowed_origins") or []) if chatbot is not None else []


@blp.after_request
def cors(response):
    """Per-bot CORS: the calling origin is echoed when the bot allows it."""
    origin = request.headers.get("Origin")
    public_id = (request.view_args or {}).get("public_id")
    if origin and public_id:
        # An error (403 for a site the bot does not allow, 404, 429) is readable by any site: it holds nothing but
        # the reason, which the widget then shows instead of a bare network failure.
        if response.status_code >= 400 or origin_in(bot_origins(public_id), origin):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Headers"] = "Content-Type, Authorization, X-API-Key"
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            response.headers["Access-Control-Max-Age"] = "600"
            response.headers["Access-Control-Expose-Headers"] = "Retry-After"
            response.vary.add("Origin")
    return response


@blp.route("/<string:public_id>")
@public(api_key=True)
class PublicBot(MethodView):
    @blp.response(200, PublicConfigSchema)
    @blp.alt_response(401, description="neither an API key nor an Origin header")
    @blp.alt_response(403, description="a site the bot does not allow, or a key of another workspace")
    def get(self, public_id):
        """What a widget needs to show a bot: name, welcome message, lead form and appearance"""
        chatbot, _channel = allowed_bot(public_id)
        config = chatbot.config
        appearance = {**(config.get("appearance") or {})}
        appearance["title"] = appearance.get("title") or chatbot.name
        return {"public_id": chatbot.public_id, "name": chatbot.name, "welcome_message": config.get(
            "welcome_message"), "citations": config.get("citations", True),
            "lead_capture": config.get("lead_capture") or {"enabled": False}, "appearance": appearance}


@blp.route("/<string:public_id>/sessions")
@public(api_key=True)
class PublicSessions(MethodView):
    @blp.arguments(SessionStartSchema)
    @blp.response(201, SessionStartedSchema)
    def post(self, payload, public_id):
        """Start a conversation"""
        chatbot, channel = allowed_bot(public_id)
        session = conversations.start_session(
            chatbot, channel=channel, external_user_id=payload.get("external_user_id"),
            metadata={**payload["metadata"], "origin": request.headers.get("Origin")})
        return {"session_id": str(session.id), "welcome_message": chatbot.config.get("welcome_message")}


@blp.route("/<string:public_id>/sessions/<uuid:session_id>/messages")
@public(api_key=True)
class PublicMessages(MethodView):
    @blp.arguments(MessageInSchema)
    @blp.response(200, AnswerSchema)
    @blp.alt_response(200, schema=SSE_EVENT,
                      content_type="text/event-stream", description="with `stream: true`: server-sent events")
    @blp.alt_response(428, description="the bot asks for a lead first: submit one, then send again")
    @blp.alt_response(429, description="the bot's or organization's rate limit")
    def post(self, payload, public_id, session_id):
        """Ask the bot; `stream: true` answers as server-sent events (delta, citations, done)"""
        chatbot, bot, session, key = conversations.live_bot_and_session(public_id, session_id, sent_api_key())
        authorize(chatbot, functools.partial(key_caller, row=key))
        return answer(bot, conversations.found_session(session), payload)


@blp.route("/<string:public_id>/messages/<uuid:message_id>/feedback")
@public(api_key=True)
class PublicFeedback(MethodView):
    @blp.arguments(FeedbackSchema)
    @blp.response(200, FeedbackOutSchema)
    def post(self, payload, public_id, message_id):
        """Thumbs up (1) or down (-1) on an answer; a later vote replaces an earlier one"""
        chatbot, _channel = allowed_bot(public_id)
        feedback = conversations.rate_answer(chatbot, message_id, payload["rating"], payload.get("comment"))
        return {"message_id": str(feedback.message_id), "rating": feedback.rating}


@blp.route("/<string:public_id>/leads")
@public(api_key=True)
class PublicLeads(MethodView):
    @blp.arguments(LeadInSchema)
    @blp.response(201, LeadOutSchema)
    def post(self, payload, public_id):
        """Leave contact details (the fields the bot asks for)"""
        chatbot, channel = allowed_bot(public_id)
        session = conversations.session_of(chatbot, payload["session_id"])
        values = {**payload["custom_fields"], **{key: payload.get(key) for key in leads.STANDARD_FIELDS
                                                 if payload.get(key)}}
        lead = leads.submit(chatbot, session, values, consent=payload["consent"], channel=channel)
        return {"lead_id": str(lead.id)}
