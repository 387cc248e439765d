"""The public chat API a widget or a customer's server calls: a bot's public config, sessions, messages (streamed or
not), feedback and leads. See docs/public-api.md.

Authorized per bot: an API key of the bot's workspace with the `chat` or `write` scope (any origin), or a browser on
one of the bot's `allowed_origins` (or this app's own pages). CORS headers are answered per bot.
"""

from __future__ import annotations

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields, validate
from sqlalchemy import orm

from privex.api.chatbots import AnswerSchema, answer
from privex.extensions import db
from privex.models import ChatMessage, ChatSession, Chatbot, Lead, MessageFeedback, Organization, Workspace
from privex.services import chat
from privex.tenancy.context import _api_key_caller, public

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
    return request.host_url.rstrip("/")


def live_bot(public_id: str, *options) -> Chatbot:
    """The live bot with this public id (``options``: what to load with it), else 404."""
    chatbot = db.session.scalars(sa.select(Chatbot).where(Chatbot.public_id == public_id).options(*options)
                                 ).unique().first()
    if chatbot is None or chatbot.status != "active":
        abort(404, message="This chatbot does not exist or is not live.")
    return chatbot


def allowed_origin(chatbot: Chatbot, origin: str | None) -> bool:
    return bool(origin) and (origin == own_origin() or origin in (chatbot.config.get("allowed_origins") or []))


def authorize(chatbot: Chatbot) -> str:
    """The channel of an allowed caller ("api" with a key, "widget" from a browser); 401/403 otherwise."""
    header = request.headers.get("Authorization", "")
    if request.headers.get("X-API-Key") or header.lower().startswith("bearer "):
        key = request.headers.get("X-API-Key") or header.split(" ", 1)[1]
        who = _api_key_caller(key.strip())
        if who.workspace_id != chatbot.workspace_id or not CHAT_SCOPES & set(who.api_key.permissions):
            abort(403, message="this API key may not chat with this bot (another workspace, or no `chat` scope)")
        return "api"
    origin = request.headers.get("Origin")
    if not origin:
        abort(401, message="send an API key (`Authorization: Bearer pk_...`), or call from a site the bot allows")
    if not allowed_origin(chatbot, origin):
        abort(403, message=f"this site ({origin}) may not use this bot: add it to the bot's allowed origins")
    return "widget"


@blp.after_request
def cors(response):
    """Per-bot CORS: the calling origin is echoed when the bot allows it."""
    origin = request.headers.get("Origin")
    public_id = (request.view_args or {}).get("public_id")
    if origin and public_id:
        chatbot = db.session.scalar(sa.select(Chatbot).where(Chatbot.public_id == public_id))
        # An error (403 for a site the bot does not allow, 404, 429) is readable by any site: it holds nothing but
        # the reason, which the widget then shows instead of a bare network failure.
        if response.status_code >= 400 or (chatbot is not None and allowed_origin(chatbot, origin)):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Headers"] = "Content-Type, Authorization, X-API-Key"
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            response.headers["Access-Control-Max-Age"] = "600"
            response.headers["Access-Control-Expose-Headers"] = "Retry-After"
            response.vary.add("Origin")
    return response


def session_of(chatbot: Chatbot, session_id) -> ChatSession:
    session = db.session.scalar(sa.select(ChatSession).where(ChatSession.id == session_id,
                                                             ChatSession.chatbot_id == chatbot.id))
    if session is None:
        abort(404, message="Session not found: start one with POST .../sessions")
    return session


def check_lead_gate(chatbot: Chatbot, session: ChatSession) -> None:
    capture = chatbot.config.get("lead_capture") or {}
    if not capture.get("enabled"):
        return
    if db.session.scalar(sa.select(Lead.id).where(Lead.session_id == session.id).limit(1)):
        return
    asked = db.session.scalar(sa.select(sa.func.count()).select_from(ChatMessage).where(
        ChatMessage.session_id == session.id, ChatMessage.role == "user"))
    if capture.get("when") == "before" or asked >= int(capture.get("after_messages") or 0):
        abort(428, message="please leave your contact details to continue", errors={"lead": ["required"]})


@blp.route("/<string:public_id>")
@public
class PublicBot(MethodView):
    @blp.response(200, PublicConfigSchema)
    def get(self, public_id):
        """What a widget needs to show a bot: name, welcome message, lead form and appearance"""
        chatbot = live_bot(public_id)
        config = chatbot.config
        appearance = {**(config.get("appearance") or {})}
        appearance["title"] = appearance.get("title") or chatbot.name
        return {"public_id": chatbot.public_id, "name": chatbot.name, "welcome_message": config.get(
            "welcome_message"), "citations": config.get("citations", True),
            "lead_capture": config.get("lead_capture") or {"enabled": False}, "appearance": appearance}


@blp.route("/<string:public_id>/sessions")
@public
class PublicSessions(MethodView):
    @blp.arguments(SessionStartSchema)
    @blp.response(201, SessionStartedSchema)
    def post(self, payload, public_id):
        """Start a conversation"""
        chatbot = live_bot(public_id)
        channel = authorize(chatbot)
        session = ChatSession(workspace_id=chatbot.workspace_id, chatbot_id=chatbot.id, channel=channel,
                              external_user_id=payload.get("external_user_id"),
                              user_metadata={**payload["metadata"], "origin": request.headers.get("Origin")})
        db.session.add(session)
        db.session.commit()
        return {"session_id": str(session.id), "welcome_message": chatbot.config.get("welcome_message")}


@blp.route("/<string:public_id>/sessions/<uuid:session_id>/messages")
@public
class PublicMessages(MethodView):
    @blp.arguments(MessageInSchema)
    @blp.response(200, AnswerSchema)
    @blp.alt_response(200, schema={"type": "string", "description": "server-sent events: delta, citations, done"},
                      content_type="text/event-stream", description="with `stream: true`: server-sent events")
    @blp.alt_response(428, description="the bot asks for a lead first: submit one, then send again")
    @blp.alt_response(429, description="the bot's or organization's rate limit")
    def post(self, payload, public_id, session_id):
        """Ask the bot; `stream: true` answers as server-sent events (delta, citations, done)"""
        chatbot = live_bot(public_id, orm.joinedload(Chatbot.knowledge_bases))
        authorize(chatbot)
        session = session_of(chatbot, session_id)
        check_lead_gate(chatbot, session)
        workspace, organization = db.session.execute(sa.select(Workspace, Organization).join(
            Organization, Organization.id == Workspace.organization_id).where(
            Workspace.id == chatbot.workspace_id)).one()
        turn = chat.Turn(workspace=workspace, config=chatbot.config, session=session, chatbot_id=chatbot.id,
                         knowledge_bases=list(chatbot.knowledge_bases))
        return answer(turn, payload, organization)


@blp.route("/<string:public_id>/messages/<uuid:message_id>/feedback")
@public
class PublicFeedback(MethodView):
    @blp.arguments(FeedbackSchema)
    @blp.response(200, FeedbackOutSchema)
    def post(self, payload, public_id, message_id):
        """Thumbs up (1) or down (-1) on an answer; a later vote replaces an earlier one"""
        chatbot = live_bot(public_id)
        authorize(chatbot)
        message = db.session.scalar(sa.select(ChatMessage).join(ChatSession).where(
            ChatMessage.id == message_id, ChatMessage.role == "assistant", ChatSession.chatbot_id == chatbot.id))
        if message is None:
            abort(404, message="Answer not found for this bot.")
        feedback = message.feedback or MessageFeedback(workspace_id=message.workspace_id, message_id=message.id,
                                                       rating=payload["rating"])
        feedback.rating, feedback.comment = payload["rating"], payload.get("comment")
        db.session.add(feedback)
        db.session.commit()
        return {"message_id": str(message.id), "rating": feedback.rating}


@blp.route("/<string:public_id>/leads")
@public
class PublicLeads(MethodView):
    @blp.arguments(LeadInSchema)
    @blp.response(201, LeadOutSchema)
    def post(self, payload, public_id):
        """Leave contact details (the fields the bot asks for)"""
        chatbot = live_bot(public_id)
        channel = authorize(chatbot)
        session = session_of(chatbot, payload["session_id"])
        capture = chatbot.config.get("lead_capture") or {}
        values = {**payload["custom_fields"], **{key: payload.get(key) for key in ("email", "name", "phone")
                                                 if payload.get(key)}}
        errors = {}
        for field in capture.get("fields") or []:
            value = values.get(field["name"])
            if field.get("required") and not (isinstance(value, str) and value.strip()):
                errors[field["name"]] = ["required"]
        if values.get("email"):
            try:
                values["email"] = validate_email(values["email"], check_deliverability=False).normalized
            except EmailNotValidError as error:
                errors["email"] = [str(error)]
        if capture.get("consent_text") and not payload["consent"]:
            errors["consent"] = ["please agree to be contacted"]
        if errors:
            abort(422, message="some contact details are missing or invalid; see `errors`", errors=errors)
        lead = Lead(workspace_id=chatbot.workspace_id, chatbot_id=chatbot.id, session_id=session.id,
                    email=values.pop("email", None), name=values.pop("name", None), phone=values.pop("phone", None),
                    custom_fields=values, consent=payload["consent"], consent_text=capture.get("consent_text"),
                    channel=channel)
        db.session.add(lead)
        db.session.commit()
        return {"lead_id": str(lead.id)}
