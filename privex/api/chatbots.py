"""Chatbots of the current workspace: drafts (Redis) and saved bots, their knowledge bases, test chats that stay out
of analytics, sessions with their messages, and analytics.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from flask import Response, request, stream_with_context
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields, validate

from privex.api.pagination import SelectPage
from privex.auth.tokens import now
from privex.extensions import db
from privex.models import ChatMessage, ChatSession, Chatbot, KnowledgeBase, MessageFeedback, Organization
from privex.models.bots import BOT_STATUSES
from privex.services import chat, plans
from privex.services import chatbots as service
from privex.tenancy.context import ResourceView, caller, current_workspace

blp = Blueprint("chatbots", __name__, url_prefix="/chatbots", description="Chatbots")


class ChatbotCreateSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    description = fields.String(allow_none=True, validate=validate.Length(max=2000))
    config = fields.Dict(load_default=dict, metadata={"description": "see ChatbotConfig: prompt, provider, "
                                                                     "messages, retrieval, lead capture, ..."})
    knowledge_base_ids = fields.List(fields.UUID(), load_default=list)


class ChatbotUpdateSchema(Schema):
    name = fields.String(validate=validate.Length(min=1, max=120))
    description = fields.String(allow_none=True, validate=validate.Length(max=2000))
    status = fields.String(validate=validate.OneOf(BOT_STATUSES))
    config = fields.Dict(metadata={"description": "changed settings only; sections merge"})
    knowledge_base_ids = fields.List(fields.UUID(), metadata={"description": "replaces the attached set"})


class ChatbotSchema(Schema):
    id = fields.UUID()
    public_id = fields.String(metadata={"description": "what the widget and the public API use"})
    name = fields.String()
    description = fields.String(allow_none=True)
    status = fields.String()
    config = fields.Dict()
    knowledge_base_ids = fields.Method("_kb_ids")
    deployed_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()

    def _kb_ids(self, chatbot):
        return [str(kb.id) for kb in chatbot.knowledge_bases]


class ChatbotDraftSchema(Schema):
    id = fields.String()
    name = fields.String()
    description = fields.String(allow_none=True)
    config = fields.Dict()
    knowledge_base_ids = fields.List(fields.String())
    created_at = fields.String()
    updated_at = fields.String()
    expires_at = fields.String()


class ChatbotListArgs(Schema):
    status = fields.String(validate=validate.OneOf(BOT_STATUSES))
    q = fields.String(validate=validate.Length(max=200), metadata={"description": "part of the name"})


class ChatTestSchema(Schema):
    message = fields.String(required=True, validate=validate.Length(min=1, max=4000))
    session_id = fields.UUID(metadata={"description": "continue a test conversation"})
    stream = fields.Boolean(load_default=False, metadata={"description": "answer as server-sent events"})


class AnswerSchema(Schema):
    session_id = fields.String()
    message_id = fields.String()
    answer = fields.String()
    citations = fields.List(fields.Dict())
    usage = fields.Dict()
    latency_ms = fields.Integer()


class AttachKnowledgeBaseSchema(Schema):
    knowledge_base_id = fields.UUID(required=True)


class ChatMessageSchema(Schema):
    id = fields.UUID()
    role = fields.String()
    content = fields.String()
    citations = fields.List(fields.Dict())
    model = fields.String(allow_none=True)
    latency_ms = fields.Integer(allow_none=True)
    prompt_tokens = fields.Integer()
    completion_tokens = fields.Integer()
    rating = fields.Method("_rating")
    created_at = fields.DateTime()

    def _rating(self, message):
        return message.feedback.rating if message.feedback else None


class ChatSessionSchema(Schema):
    id = fields.UUID()
    channel = fields.String()
    external_user_id = fields.String(allow_none=True)
    is_test = fields.Boolean()
    last_message_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()


class ChatSessionDetailSchema(ChatSessionSchema):
    messages = fields.List(fields.Nested(ChatMessageSchema))


class ChatSessionArgs(Schema):
    include_tests = fields.Boolean(load_default=False)


class ChatbotAnalyticsSchema(Schema):
    sessions = fields.Integer()
    messages = fields.Integer()
    answers = fields.Integer()
    average_latency_ms = fields.Integer(allow_none=True)
    prompt_tokens = fields.Integer()
    completion_tokens = fields.Integer()
    thumbs_up = fields.Integer()
    thumbs_down = fields.Integer()
    unanswered = fields.Integer(metadata={"description": "answers given with the fallback (nothing relevant found)"})
    leads = fields.Integer()


def sse(events) -> Response:
    """Server-sent events: ``event: <type>`` and the event as JSON, flushed one by one."""

    def lines():
        for event in events:
            yield f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"

    return Response(stream_with_context(lines()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def answer(turn: chat.Turn, payload: dict, organization):
    session_id = str(turn.session.id)  # the stream is read after the request's database session has closed
    events = chat.turn(turn, payload["message"], organization=organization)
    if payload.get("stream"):
        return sse(({**event, "session_id": session_id} if event["type"] == "done" else event) for event in events)
    return {"session_id": session_id, **chat.gather(events)}


def test_session(workspace, payload: dict, *, chatbot_id=None, draft_id=None) -> ChatSession:
    """The test conversation to continue, or a new one; test sessions stay out of analytics."""
    if payload.get("session_id"):
        session = db.session.scalar(sa.select(ChatSession).where(
            ChatSession.workspace_id == workspace.id, ChatSession.id == payload["session_id"],
            ChatSession.is_test.is_(True)))
        if session is None or (chatbot_id and session.chatbot_id != chatbot_id) or (
                draft_id and session.user_metadata.get("draft_id") != str(draft_id)):
            abort(404, message="Test session not found.")
        return session
    session = ChatSession(workspace_id=workspace.id, chatbot_id=chatbot_id, channel="test", is_test=True,
                          user_metadata={"draft_id": str(draft_id)} if draft_id else {})
    db.session.add(session)
    db.session.flush()
    return session


class DraftView(ResourceView):
    """One chatbot draft: 404 for another workspace's (or an expired) draft before the body is read."""

    def dispatch_request(self, **kwargs):
        self.workspace = current_workspace(self.permissions[request.method.lower()])
        self.draft = service.get_draft(self.workspace, kwargs["bot_draft_id"])
        return super().dispatch_request(**kwargs)


@blp.route("/drafts")
class Drafts(ResourceView):
    @blp.arguments(ChatbotCreateSchema)
    @blp.response(201, ChatbotDraftSchema)
    def post(self, payload):
        """Start a chatbot draft (kept for PRIVEX_DRAFT_HOURS after its last change)"""
        return service.new_draft(self.workspace, caller().user_id, payload)


@blp.route("/drafts/<uuid:bot_draft_id>")
class DraftItem(DraftView):
    @blp.response(200, ChatbotDraftSchema)
    def get(self, bot_draft_id):
        """Get a chatbot draft"""
        return self.draft

    @blp.arguments(ChatbotUpdateSchema)
    @blp.response(200, ChatbotDraftSchema)
    def patch(self, payload, bot_draft_id):
        """Change a draft: name, settings (sections merge), knowledge bases"""
        draft = self.draft
        if "config" in payload:
            draft["config"] = service.resolve_config(self.workspace, draft["config"], payload["config"])
        if "knowledge_base_ids" in payload:
            draft["knowledge_base_ids"] = [str(kb.id) for kb in service.knowledge_bases(
                self.workspace, payload["knowledge_base_ids"])]
        for key in ("name", "description"):
            if key in payload:
                draft[key] = payload[key]
        return service.DRAFTS.save(draft)

    @blp.response(204)
    def delete(self, bot_draft_id):
        """Discard a draft and its test conversations"""
        service.delete_draft(self.draft)


@blp.route("/drafts/<uuid:bot_draft_id>/test")
class DraftTest(DraftView):
    @blp.arguments(ChatTestSchema)
    @blp.response(200, AnswerSchema)
    @blp.alt_response(200, schema={"type": "string", "description": "server-sent events: delta, citations, done"},
                      content_type="text/event-stream", description="with `stream: true`: server-sent events")
    def post(self, payload, bot_draft_id):
        """Chat with a draft as it is now (test conversations stay out of analytics)"""
        session = test_session(self.workspace, payload, draft_id=bot_draft_id)
        turn = chat.Turn(workspace=self.workspace, config=self.draft["config"], session=session,
                         knowledge_bases=service.knowledge_bases(self.workspace, self.draft["knowledge_base_ids"]))
        return answer(turn, payload, db.session.get(Organization, self.workspace.organization_id))


@blp.route("/drafts/<uuid:bot_draft_id>/finalize")
class DraftFinalize(DraftView):
    @blp.response(201, ChatbotSchema)
    @blp.alt_response(402, description="The plan's chatbot limit is reached")
    def post(self, bot_draft_id):
        """Save the draft as a chatbot, live at once (its public id works in the widget and the public API)"""
        draft = self.draft
        plans.enforce(db.session.get(Organization, self.workspace.organization_id), "chatbots")
        chatbot = Chatbot(workspace_id=self.workspace.id, name=draft["name"], description=draft.get("description"),
                          config=service.resolve_config(self.workspace, {}, draft["config"]), status="active",
                          created_by_id=caller().user_id, deployed_at=now())
        chatbot.knowledge_bases = service.knowledge_bases(self.workspace, draft["knowledge_base_ids"])
        db.session.add(chatbot)
        db.session.commit()
        service.delete_draft(draft)
        return chatbot


@blp.route("")
class Chatbots(ResourceView):
    @blp.arguments(ChatbotListArgs, location="query")
    @blp.response(200, ChatbotSchema(many=True))
    @blp.paginate(SelectPage)
    def get(self, args):
        """List the workspace's chatbots (filter by status or name)"""
        statement = sa.select(Chatbot).where(Chatbot.workspace_id == self.workspace.id)
        if args.get("status"):
            statement = statement.where(Chatbot.status == args["status"])
        if args.get("q"):
            statement = statement.where(Chatbot.name.ilike(f"%{args['q']}%"))
        return statement.order_by(Chatbot.created_at.desc(), Chatbot.id)

    @blp.arguments(ChatbotCreateSchema)
    @blp.response(201, ChatbotSchema)
    @blp.alt_response(402, description="The plan's chatbot limit is reached")
    def post(self, payload):
        """Create a chatbot directly, without a draft"""
        plans.enforce(db.session.get(Organization, self.workspace.organization_id), "chatbots")
        chatbot = Chatbot(workspace_id=self.workspace.id, name=payload["name"],
                          description=payload.get("description"), status="active", deployed_at=now(),
                          config=service.resolve_config(self.workspace, {}, payload["config"]),
                          created_by_id=caller().user_id)
        chatbot.knowledge_bases = service.knowledge_bases(self.workspace, payload["knowledge_base_ids"])
        db.session.add(chatbot)
        db.session.commit()
        return chatbot


@blp.route("/<uuid:chatbot_id>")
class ChatbotItem(ResourceView):
    resources = {"chatbot_id": Chatbot}

    @blp.response(200, ChatbotSchema)
    def get(self, chatbot_id):
        """Get a chatbot with its whole configuration"""
        return self.found["chatbot_id"]

    @blp.arguments(ChatbotUpdateSchema)
    @blp.response(200, ChatbotSchema)
    def patch(self, payload, chatbot_id):
        """Change a chatbot: name, status (pause it), settings (sections merge), knowledge bases"""
        chatbot = self.found["chatbot_id"]
        if "config" in payload:
            chatbot.config = service.resolve_config(self.workspace, chatbot.config, payload["config"])
        if "knowledge_base_ids" in payload:
            chatbot.knowledge_bases = service.knowledge_bases(self.workspace, payload["knowledge_base_ids"])
        for key in ("name", "description", "status"):
            if key in payload:
                setattr(chatbot, key, payload[key])
        db.session.commit()
        return chatbot

    @blp.response(204)
    def delete(self, chatbot_id):
        """Delete a chatbot with its conversations (its leads and token usage stay)"""
        db.session.delete(self.found["chatbot_id"])
        db.session.commit()


@blp.route("/<uuid:chatbot_id>/test")
class ChatbotTest(ResourceView):
    resources = {"chatbot_id": Chatbot}

    @blp.arguments(ChatTestSchema)
    @blp.response(200, AnswerSchema)
    @blp.alt_response(200, schema={"type": "string", "description": "server-sent events: delta, citations, done"},
                      content_type="text/event-stream", description="with `stream: true`: server-sent events")
    def post(self, payload, chatbot_id):
        """Chat with a saved bot without counting in its analytics"""
        chatbot = self.found["chatbot_id"]
        session = test_session(self.workspace, payload, chatbot_id=chatbot.id)
        turn = chat.Turn(workspace=self.workspace, config=chatbot.config, session=session, chatbot_id=chatbot.id,
                         knowledge_bases=list(chatbot.knowledge_bases))
        return answer(turn, payload, db.session.get(Organization, self.workspace.organization_id))


@blp.route("/<uuid:chatbot_id>/kb/attach")
class AttachKnowledgeBase(ResourceView):
    resources = {"chatbot_id": Chatbot}

    @blp.arguments(AttachKnowledgeBaseSchema)
    @blp.response(200, ChatbotSchema)
    def post(self, payload, chatbot_id):
        """Let a chatbot answer from one more knowledge base"""
        chatbot = self.found["chatbot_id"]
        [knowledge_base] = service.knowledge_bases(self.workspace, [payload["knowledge_base_id"]])
        if knowledge_base not in chatbot.knowledge_bases:
            chatbot.knowledge_bases.append(knowledge_base)
        db.session.commit()
        return chatbot


@blp.route("/<uuid:chatbot_id>/kb/<uuid:kb_id>")
class DetachKnowledgeBase(ResourceView):
    resources = {"chatbot_id": Chatbot, "kb_id": KnowledgeBase}

    @blp.response(204)
    def delete(self, chatbot_id, kb_id):
        """Stop a chatbot answering from a knowledge base (the knowledge base stays)"""
        chatbot = self.found["chatbot_id"]
        if self.found["kb_id"] not in chatbot.knowledge_bases:
            abort(404, message="This knowledge base is not attached to the chatbot.")
        chatbot.knowledge_bases.remove(self.found["kb_id"])
        db.session.commit()


@blp.route("/<uuid:chatbot_id>/sessions")
class ChatbotSessions(ResourceView):
    resources = {"chatbot_id": Chatbot}

    @blp.arguments(ChatSessionArgs, location="query")
    @blp.response(200, ChatSessionSchema(many=True))
    @blp.paginate(SelectPage)
    def get(self, args, chatbot_id):
        """A chatbot's conversations, newest first (test conversations with `include_tests=true`)"""
        statement = sa.select(ChatSession).where(ChatSession.chatbot_id == chatbot_id)
        if not args["include_tests"]:
            statement = statement.where(ChatSession.is_test.is_(False))
        return statement.order_by(ChatSession.created_at.desc(), ChatSession.id)


@blp.route("/<uuid:chatbot_id>/sessions/<uuid:session_id>")
class ChatbotSession(ResourceView):
    resources = {"chatbot_id": Chatbot, "session_id": ChatSession}

    @blp.response(200, ChatSessionDetailSchema)
    def get(self, chatbot_id, session_id):
        """One conversation with all its messages, citations, latency, tokens and ratings"""
        session = self.found["session_id"]
        if session.chatbot_id != chatbot_id:
            abort(404, message="ChatSession not found.")
        return session


@blp.route("/<uuid:chatbot_id>/analytics")
class ChatbotAnalytics(ResourceView):
    resources = {"chatbot_id": Chatbot}

    @blp.response(200, ChatbotAnalyticsSchema)
    def get(self, chatbot_id):
        """Conversations, messages, latency, tokens, ratings and leads (test conversations left out)"""
        from privex.models import Lead

        real = sa.select(ChatSession.id).where(ChatSession.chatbot_id == chatbot_id,
                                               ChatSession.is_test.is_(False))
        messages = sa.select(ChatMessage).where(ChatMessage.session_id.in_(real)).subquery()
        row = db.session.execute(sa.select(
            sa.func.count(), sa.func.count().filter(messages.c.role == "assistant"),
            sa.func.avg(messages.c.latency_ms), sa.func.coalesce(sa.func.sum(messages.c.prompt_tokens), 0),
            sa.func.coalesce(sa.func.sum(messages.c.completion_tokens), 0),
            sa.func.count().filter(messages.c.metadata["finish_reason"].astext == "no_answer"))).one()
        ratings = dict(db.session.execute(sa.select(MessageFeedback.rating, sa.func.count()).join(
            ChatMessage, ChatMessage.id == MessageFeedback.message_id).where(ChatMessage.session_id.in_(real))
            .group_by(MessageFeedback.rating)).all())
        return {"sessions": db.session.scalar(sa.select(sa.func.count()).select_from(real.subquery())),
                "messages": row[0], "answers": row[1], "average_latency_ms": round(row[2]) if row[2] else None,
                "prompt_tokens": row[3], "completion_tokens": row[4], "unanswered": row[5],
                "thumbs_up": ratings.get(1, 0), "thumbs_down": ratings.get(-1, 0),
                "leads": db.session.scalar(sa.select(sa.func.count()).select_from(Lead).where(
                    Lead.chatbot_id == chatbot_id))}


