"""Chatflows of the current workspace: drafts (Redis), saved flows with a working copy and published versions,
test runs with a trace per node, execution of the deployed version as a conversation, publishing and rollback.

The seed's ten endpoints are here (drafts create/get/update/finalize, list, get, update, delete, execute, test),
with publish, versions, rollback and the node-type catalogue the builder's canvas reads.
"""

from __future__ import annotations

from flask import request
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from privex.api.answers import SSE_EVENT, AnswerSchema, answer, sse
from privex.api.chatbots import ChatbotAnalyticsSchema, ChatMessageSchema, ChatSessionArgs, ChatSessionSchema
from privex.api.pagination import SelectPage
from privex.extensions import db
from privex.models import ChatMessage, ChatSession, Chatflow
from privex.models.bots import BOT_STATUSES
from privex.services import analytics, conversations
from privex.services.chatflows import runtime
from privex.services.chatflows import store as service
from privex.services.errors import NotFound
from privex.tenancy.context import ResourceView, caller, current_workspace, scoped

blp = Blueprint("chatflows", __name__, url_prefix="/chatflows", description="Chatflows")

GRAPH_LIST = {"description": "see docs/chatflows.md: nodes {id, type, version, config, position, retry, on_error, "
                             "default}; edges {source, source_port, target, target_port}"}


# The events of a test run streamed: the engine's own, a trace per node and a pause among them.
FLOW_SSE_EVENT = {"type": "object", "required": ["event", "data"], "properties": {
    "event": {"type": "string", "enum": ["trace", "delta", "citations", "pause", "done", "error"]},
    "data": {"type": "string", "description": "the event as JSON: `type` and, by type, `node_id`, `node_type`, "
                                              "`inputs`, `outputs`, `duration_ms`, `error` (trace); `text`; "
                                              "`citations`; `question`, `state` (pause); `message` (error)"}}}


class ChatflowCreateSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    description = fields.String(allow_none=True, validate=validate.Length(max=2000))
    nodes = fields.List(fields.Dict(), validate=validate.Length(max=500), metadata=GRAPH_LIST)
    edges = fields.List(fields.Dict(), validate=validate.Length(max=5000), metadata=GRAPH_LIST)
    config = fields.Dict(load_default=dict, metadata={"description": "deployment settings, as a chatbot's: welcome "
                                                                     "and fallback message, appearance, allowed "
                                                                     "origins, rate limit, lead capture, and the "
                                                                     "default provider of llm nodes"})


class ChatflowUpdateSchema(Schema):
    name = fields.String(validate=validate.Length(min=1, max=120))
    description = fields.String(allow_none=True, validate=validate.Length(max=2000))
    status = fields.String(validate=validate.OneOf(BOT_STATUSES))
    nodes = fields.List(fields.Dict(), validate=validate.Length(max=500), metadata=GRAPH_LIST)
    edges = fields.List(fields.Dict(), validate=validate.Length(max=5000), metadata=GRAPH_LIST)
    config = fields.Dict(metadata={"description": "changed settings only; sections merge"})


class ChatflowSchema(Schema):
    id = fields.UUID()
    public_id = fields.String(metadata={"description": "what the widget and the public API use, once published"})
    name = fields.String()
    description = fields.String(allow_none=True)
    status = fields.String()
    nodes = fields.List(fields.Dict(), metadata={"description": "the working copy (not what visitors talk to)"})
    edges = fields.List(fields.Dict())
    config = fields.Dict()
    version = fields.Integer(metadata={"description": "the deployed version; 0 until the first publish"})
    deployed_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class ChatflowDraftSchema(Schema):
    id = fields.String()
    name = fields.String()
    description = fields.String(allow_none=True)
    nodes = fields.List(fields.Dict())
    edges = fields.List(fields.Dict())
    config = fields.Dict()
    problems = fields.Dict(allow_none=True, metadata={"description": "what finalizing would refuse, per node, edge "
                                                                     "and graph; null when the graph is valid"})
    created_at = fields.String()
    updated_at = fields.String()
    expires_at = fields.String()


class ChatflowListArgs(Schema):
    status = fields.String(validate=validate.OneOf(BOT_STATUSES))
    q = fields.String(validate=validate.Length(max=200), metadata={"description": "part of the name"})
    published = fields.Boolean(metadata={"description": "only flows with (true) or without (false) a version"})


class VersionSchema(Schema):
    number = fields.Integer()
    note = fields.String(allow_none=True)
    nodes = fields.List(fields.Dict())
    edges = fields.List(fields.Dict())
    created_by_id = fields.UUID(allow_none=True)
    created_at = fields.DateTime()
    deployed = fields.Method("_deployed")

    def _deployed(self, version):
        return version.number == version.chatflow.version


class PublishSchema(Schema):
    note = fields.String(allow_none=True, validate=validate.Length(max=2000))


class RollbackSchema(Schema):
    version = fields.Integer(required=True, validate=validate.Range(min=1, max=2**31 - 1))


class ExecuteSchema(Schema):
    message = fields.String(required=True, validate=validate.Length(min=1, max=4000))
    session_id = fields.UUID(metadata={"description": "continue a conversation (a paused flow resumes with this "
                                                      "message)"})
    external_user_id = fields.String(validate=validate.Length(max=255))
    stream = fields.Boolean(load_default=False, metadata={"description": "answer as server-sent events"})


class ExecuteResultSchema(AnswerSchema):
    trace = fields.List(fields.Dict(), metadata={"description": "per node: node_id, type, inputs, outputs, "
                                                                "duration_ms, error (stored with the answer)"})
    finish_reason = fields.String(metadata={"description": "stop, awaiting_input (a node asked the visitor) or "
                                                          "error (the flow failed; the fallback message answered)"})
    flow_error = fields.String(allow_none=True)


class TestRunSchema(Schema):
    message = fields.String(load_default="", validate=validate.Length(max=4000))
    nodes = fields.List(fields.Dict(), validate=validate.Length(max=500),
                        metadata={"description": "a graph to try instead of the saved working copy"})
    edges = fields.List(fields.Dict(), validate=validate.Length(max=5000))
    state = fields.Dict(metadata={"description": "the `state` of a paused run, to resume it with `answer`"})
    answer = fields.String(validate=validate.Length(max=4000))
    stream = fields.Boolean(load_default=False, metadata={"description": "events as server-sent events"})


class TestResultSchema(Schema):
    status = fields.String(metadata={"description": "done, paused or error"})
    answer = fields.String()
    citations = fields.List(fields.Dict())
    trace = fields.List(fields.Dict())
    error = fields.Dict(allow_none=True, metadata={"description": "message and node_id when the flow stopped"})
    question = fields.String(allow_none=True, metadata={"description": "what a paused flow asks"})
    state = fields.Dict(allow_none=True, metadata={"description": "send back with `answer` to resume"})


class NodeTypeSchema(Schema):
    type = fields.String()
    version = fields.String()
    role = fields.String(allow_none=True)
    inputs = fields.List(fields.String())
    outputs = fields.List(fields.String())
    config_schema = fields.Dict()
    description = fields.String()
    plugin = fields.String()


class FlowMessageSchema(ChatMessageSchema):
    chatflow_version = fields.Method("_version", metadata={"description": "the published version that answered"})
    trace = fields.Method("_trace", metadata={"description": "per node: node_id, type, inputs, outputs, "
                                                            "duration_ms, error"})
    flow_error = fields.Method("_error")

    def _version(self, message):
        return message.metadata_.get("chatflow_version")

    def _trace(self, message):
        return message.metadata_.get("trace")

    def _error(self, message):
        return message.metadata_.get("flow_error")


class FlowSessionDetailSchema(ChatSessionSchema):
    messages = fields.List(fields.Nested(FlowMessageSchema))


class DraftView(ResourceView):
    """One chatflow draft: 404 for another workspace's (or an expired) draft before the body is read."""

    def dispatch_request(self, **kwargs):
        self.workspace = current_workspace(self.permissions[request.method.lower()])
        self.draft = service.get_draft(self.workspace, kwargs["flow_draft_id"])
        return super().dispatch_request(**kwargs)


@blp.route("/node-types")
class NodeTypes(ResourceView):
    @blp.response(200, NodeTypeSchema(many=True))
    def get(self):
        """Every installed node type with its settings schema and ports (what the canvas's palette lists)"""
        return runtime.catalogue()


@blp.route("/drafts")
class Drafts(ResourceView):
    @blp.arguments(ChatflowCreateSchema)
    @blp.response(201, ChatflowDraftSchema)
    def post(self, payload):
        """Start a chatflow draft (kept for PRIVEX_DRAFT_HOURS after its last change); without nodes it starts from
        a start → response graph"""
        return service.new_draft(self.workspace, caller().user_id, payload)


@blp.route("/drafts/<uuid:flow_draft_id>")
class DraftItem(DraftView):
    @blp.response(200, ChatflowDraftSchema)
    def get(self, flow_draft_id):
        """Get a chatflow draft with what finalizing it would refuse"""
        return service.draft_view(self.draft)

    @blp.arguments(ChatflowUpdateSchema)
    @blp.response(200, ChatflowDraftSchema)
    def patch(self, payload, flow_draft_id):
        """Change a draft: name, settings, nodes and edges (an unfinished graph is kept; see `problems`)"""
        payload.pop("status", None)
        return service.update_draft(self.workspace, self.draft, payload)

    @blp.response(204)
    def delete(self, flow_draft_id):
        """Discard a draft"""
        service.DRAFTS.delete(self.draft["id"])


@blp.route("/drafts/<uuid:flow_draft_id>/finalize")
class DraftFinalize(DraftView):
    @blp.response(201, ChatflowSchema)
    @blp.alt_response(402, description="The plan's chatflow limit is reached")
    def post(self, flow_draft_id):
        """Save the draft as a chatflow and publish its graph as version 1 (422 with per-node errors when it does
        not validate)"""
        return service.finalize_draft(self.workspace, self.draft, caller().user_id)


@blp.route("")
class Chatflows(ResourceView):
    @blp.arguments(ChatflowListArgs, location="query")
    @blp.response(200, ChatflowSchema(many=True))
    @blp.paginate(SelectPage)
    def get(self, args):
        """List the workspace's chatflows (filter by status, name, published or not)"""
        statement = scoped(Chatflow)
        if args.get("status"):
            statement = statement.where(Chatflow.status == args["status"])
        if args.get("q"):
            statement = statement.where(Chatflow.name.icontains(args["q"], autoescape=True))
        if "published" in args:
            statement = statement.where(Chatflow.version > 0 if args["published"] else Chatflow.version == 0)
        return statement.order_by(Chatflow.created_at.desc(), Chatflow.id)

    @blp.arguments(ChatflowCreateSchema)
    @blp.response(201, ChatflowSchema)
    @blp.alt_response(402, description="The plan's chatflow limit is reached")
    def post(self, payload):
        """Create a chatflow directly (not live until published)"""
        return service.create(self.workspace, caller().user_id, payload["name"], payload.get("description"),
                              payload.get("nodes"), payload.get("edges"), payload.get("config"))


@blp.route("/<uuid:chatflow_id>")
class ChatflowItem(ResourceView):
    resources = {"chatflow_id": Chatflow}

    @blp.response(200, ChatflowSchema)
    def get(self, chatflow_id):
        """Get a chatflow: its working copy, settings and deployed version number"""
        return self.found["chatflow_id"]

    @blp.arguments(ChatflowUpdateSchema)
    @blp.response(200, ChatflowSchema)
    def patch(self, payload, chatflow_id):
        """Change a chatflow: name, status (pause it), settings, or its working copy (validated: 422 with per-node
        errors; the deployed version does not change until you publish)"""
        return service.update(self.workspace, self.found["chatflow_id"], **payload)

    @blp.response(204)
    def delete(self, chatflow_id):
        """Delete a chatflow with its versions and conversations (its leads and token usage stay)"""
        service.delete(self.workspace, self.found["chatflow_id"])


@blp.route("/<uuid:chatflow_id>/publish")
class Publish(ResourceView):
    resources = {"chatflow_id": Chatflow}

    @blp.arguments(PublishSchema)
    @blp.response(201, VersionSchema)
    def post(self, payload, chatflow_id):
        """Publish the working copy as the next version and deploy it"""
        return service.publish(self.workspace, self.found["chatflow_id"], caller().user_id, payload.get("note"))


@blp.route("/<uuid:chatflow_id>/versions")
class Versions(ResourceView):
    resources = {"chatflow_id": Chatflow}

    @blp.response(200, VersionSchema(many=True))
    def get(self, chatflow_id):
        """Published versions, newest first (`deployed` marks the one visitors talk to)"""
        return service.versions(self.found["chatflow_id"])


@blp.route("/<uuid:chatflow_id>/rollback")
class Rollback(ResourceView):
    resources = {"chatflow_id": Chatflow}

    @blp.arguments(RollbackSchema)
    @blp.response(200, VersionSchema)
    def post(self, payload, chatflow_id):
        """Deploy an older version again (the working copy stays as it is)"""
        return service.rollback(self.workspace, self.found["chatflow_id"], payload["version"])


@blp.route("/<uuid:chatflow_id>/test")
class Test(ResourceView):
    resources = {"chatflow_id": Chatflow}

    @blp.arguments(TestRunSchema)
    @blp.response(200, TestResultSchema)
    @blp.alt_response(200, schema=FLOW_SSE_EVENT, content_type="text/event-stream",
                      description="with `stream: true`: the engine's events (trace per node, delta, pause, done)")
    def post(self, payload, chatflow_id):
        """Run the working copy (or a graph sent with the request) once and return each node's trace; nothing is
        stored. Resume a paused run with its `state` and an `answer`."""
        chatflow = self.found["chatflow_id"]
        events = runtime.test_run(self.workspace, payload.get("nodes", chatflow.nodes),
                                  payload.get("edges", chatflow.edges), payload["message"],
                                  state=payload.get("state"), answer=payload.get("answer"), config=chatflow.config)
        if payload["stream"]:
            return sse(events)
        return runtime.gathered(events)


@blp.route("/<uuid:chatflow_id>/execute")
class Execute(ResourceView):
    resources = {"chatflow_id": Chatflow}

    @blp.arguments(ExecuteSchema)
    @blp.response(200, ExecuteResultSchema)
    @blp.alt_response(200, schema=SSE_EVENT, content_type="text/event-stream",
                      description="with `stream: true`: server-sent events, as a chatbot's answer")
    @blp.alt_response(409, description="The chatflow is not published or not active")
    def post(self, payload, chatflow_id):
        """Send a message to the deployed version, as a conversation (stored, counted in analytics, with the trace
        of every node kept on the answer)"""
        chatflow = self.found["chatflow_id"]
        bot = conversations.flow_bot(chatflow, service.ensure_live(chatflow))
        if payload.get("session_id"):
            session = conversations.session_of(chatflow, payload["session_id"])
        else:
            session = conversations.start_session(chatflow, channel="api",
                                                  external_user_id=payload.get("external_user_id"))
        result = answer(bot, session, payload)
        if payload["stream"]:
            return result
        message = db.session.get(ChatMessage, result["message_id"])
        metadata = message.metadata_ if message is not None else {}
        return {**result, "trace": metadata.get("trace", []),
                "finish_reason": "awaiting_input" if metadata.get("awaiting_input") else (
                    "error" if metadata.get("flow_error") else "stop"),
                "flow_error": (metadata.get("flow_error") or {}).get("message")}


@blp.route("/<uuid:chatflow_id>/sessions")
class ChatflowSessions(ResourceView):
    resources = {"chatflow_id": Chatflow}

    @blp.arguments(ChatSessionArgs, location="query")
    @blp.response(200, ChatSessionSchema(many=True))
    @blp.paginate(SelectPage)
    def get(self, args, chatflow_id):
        """A chatflow's conversations, newest first (test conversations with `include_tests=true`)"""
        statement = scoped(ChatSession).where(ChatSession.chatflow_id == chatflow_id)
        if not args["include_tests"]:
            statement = statement.where(ChatSession.is_test.is_(False))
        return statement.order_by(ChatSession.created_at.desc(), ChatSession.id)


@blp.route("/<uuid:chatflow_id>/sessions/<uuid:flow_session_id>")
class ChatflowSession(ResourceView):
    resources = {"chatflow_id": Chatflow, "flow_session_id": ChatSession}

    @blp.response(200, FlowSessionDetailSchema)
    def get(self, chatflow_id, flow_session_id):
        """One conversation with all its messages, each answer with the trace of every node"""
        session = self.found["flow_session_id"]
        if session.chatflow_id != chatflow_id:
            raise NotFound("ChatSession not found.")
        return session


@blp.route("/<uuid:chatflow_id>/analytics")
class ChatflowAnalytics(ResourceView):
    resources = {"chatflow_id": Chatflow}

    @blp.response(200, ChatbotAnalyticsSchema)
    def get(self, chatflow_id):
        """Conversations, messages, latency, tokens, ratings and leads, as a chatbot's (test runs left out)"""
        return analytics.chatbot_summary(self.found["chatflow_id"])
