"""Chatbots of the current workspace: drafts (Redis) and saved bots, their knowledge bases, test chats that stay out
of analytics, sessions with their messages, and analytics.
"""

from __future__ import annotations

from flask import request
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from privex.api.answers import SSE_EVENT, AnswerSchema, test_chat
from privex.api.pagination import SelectPage
from privex.models import ChatSession, Chatbot, KnowledgeBase
from privex.models.bots import BOT_STATUSES
from privex.services import analytics, conversations
from privex.services import chatbots as service
from privex.services.errors import NotFound
from privex.tenancy.context import ResourceView, caller, current_workspace, scoped

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
        payload.pop("status", None)  # a draft is not live until finalized
        return service.update_draft(self.workspace, self.draft, payload)

    @blp.response(204)
    def delete(self, bot_draft_id):
        """Discard a draft and its test conversations"""
        service.delete_draft(self.draft)


@blp.route("/drafts/<uuid:bot_draft_id>/test")
class DraftTest(DraftView):
    @blp.arguments(ChatTestSchema)
    @blp.response(200, AnswerSchema)
    @blp.alt_response(200, schema=SSE_EVENT,
                      content_type="text/event-stream", description="with `stream: true`: server-sent events")
    def post(self, payload, bot_draft_id):
        """Chat with a draft as it is now (test conversations stay out of analytics)"""
        return test_chat(conversations.draft_bot(self.workspace, self.draft), payload)


@blp.route("/drafts/<uuid:bot_draft_id>/finalize")
class DraftFinalize(DraftView):
    @blp.response(201, ChatbotSchema)
    @blp.alt_response(402, description="The plan's chatbot limit is reached")
    def post(self, bot_draft_id):
        """Save the draft as a chatbot, live at once (its public id works in the widget and the public API)"""
        return service.finalize_draft(self.workspace, self.draft, caller().user_id)


@blp.route("")
class Chatbots(ResourceView):
    @blp.arguments(ChatbotListArgs, location="query")
    @blp.response(200, ChatbotSchema(many=True))
    @blp.paginate(SelectPage)
    def get(self, args):
        """List the workspace's chatbots (filter by status or name)"""
        statement = scoped(Chatbot)
        if args.get("status"):
            statement = statement.where(Chatbot.status == args["status"])
        if args.get("q"):
            statement = statement.where(Chatbot.name.icontains(args["q"], autoescape=True))
        return statement.order_by(Chatbot.created_at.desc(), Chatbot.id)

    @blp.arguments(ChatbotCreateSchema)
    @blp.response(201, ChatbotSchema)
    @blp.alt_response(402, description="The plan's chatbot limit is reached")
    def post(self, payload):
        """Create a chatbot directly, without a draft"""
        return service.create(self.workspace, caller().user_id, payload)


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
        return service.update(self.workspace, self.found["chatbot_id"], payload)

    @blp.response(204)
    def delete(self, chatbot_id):
        """Delete a chatbot with its conversations (its leads and token usage stay)"""
        service.delete(self.found["chatbot_id"])


@blp.route("/<uuid:chatbot_id>/test")
class ChatbotTest(ResourceView):
    resources = {"chatbot_id": Chatbot}

    @blp.arguments(ChatTestSchema)
    @blp.response(200, AnswerSchema)
    @blp.alt_response(200, schema=SSE_EVENT,
                      content_type="text/event-stream", description="with `stream: true`: server-sent events")
    def post(self, payload, chatbot_id):
        """Chat with a saved bot without counting in its analytics"""
        return test_chat(conversations.saved_bot(self.found["chatbot_id"]), payload)


@blp.route("/<uuid:chatbot_id>/kb/attach")
class AttachKnowledgeBase(ResourceView):
    resources = {"chatbot_id": Chatbot}

    @blp.arguments(AttachKnowledgeBaseSchema)
    @blp.response(200, ChatbotSchema)
    def post(self, payload, chatbot_id):
        """Let a chatbot answer from one more knowledge base"""
        return service.attach(self.workspace, self.found["chatbot_id"], payload["knowledge_base_id"])


@blp.route("/<uuid:chatbot_id>/kb/<uuid:kb_id>")
class DetachKnowledgeBase(ResourceView):
    resources = {"chatbot_id": Chatbot, "kb_id": KnowledgeBase}

    @blp.response(204)
    def delete(self, chatbot_id, kb_id):
        """Stop a chatbot answering from a knowledge base (the knowledge base stays)"""
        service.detach(self.found["chatbot_id"], self.found["kb_id"])


@blp.route("/<uuid:chatbot_id>/sessions")
class ChatbotSessions(ResourceView):
    resources = {"chatbot_id": Chatbot}

    @blp.arguments(ChatSessionArgs, location="query")
    @blp.response(200, ChatSessionSchema(many=True))
    @blp.paginate(SelectPage)
    def get(self, args, chatbot_id):
        """A chatbot's conversations, newest first (test conversations with `include_tests=true`)"""
        statement = scoped(ChatSession).where(ChatSession.chatbot_id == chatbot_id)
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
            raise NotFound("ChatSession not found.")
        return session


@blp.route("/<uuid:chatbot_id>/analytics")
class ChatbotAnalytics(ResourceView):
    resources = {"chatbot_id": Chatbot}

    @blp.response(200, ChatbotAnalyticsSchema)
    def get(self, chatbot_id):
        """Conversations, messages, latency, tokens, ratings and leads (test conversations left out)"""
        return analytics.chatbot_summary(self.found["chatbot_id"])
