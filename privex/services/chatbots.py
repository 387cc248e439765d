"""Chatbots: their configuration (one validated JSON document), creating, changing and deleting them, drafts in
Redis, and the knowledge bases they answer from. Every front end (the API, the builder, the back office) writes a bot
through these functions, so a bot that cannot answer is never saved. Answering is ``privex.services.conversations``.
"""

from __future__ import annotations

import copy
import json
import uuid

import sqlalchemy as sa
from flask import current_app
from marshmallow import Schema, ValidationError, fields, validate

from privex.clock import now
from privex.extensions import db, state
from privex.models import ChatSession, Chatbot, KnowledgeBase, Organization, Workspace
from privex.models.bots import BOT_STATUSES
from privex.plugins import NotInstalled
from privex.services import credentials, plans
from privex.services.errors import Invalid, NotFound
from privex.services.fields import check_name, check_text
from privex.services.drafting import DraftStore

ORIGIN = r"^https?://[^/\s?#]+$"


class RetrievalSettings(Schema):
    mode = fields.String(load_default="hybrid", validate=validate.OneOf(["hybrid", "vector", "keyword"]))
    top_k = fields.Integer(load_default=5, validate=validate.Range(min=1, max=20))
    threshold = fields.Float(load_default=None, allow_none=True, validate=validate.Range(min=0, max=1))


class LeadField(Schema):
    name = fields.String(required=True, validate=validate.Regexp(r"^[a-z][a-z0-9_]{0,39}$"))
    label = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=120))
    type = fields.String(load_default="text", validate=validate.OneOf(["email", "text", "tel"]))
    required = fields.Boolean(load_default=False)


class LeadCapture(Schema):
    enabled = fields.Boolean(load_default=False)
    when = fields.String(load_default="after", validate=validate.OneOf(["before", "after"]),
                         metadata={"description": "ask before the first message, or after `after_messages`"})
    after_messages = fields.Integer(load_default=3, validate=validate.Range(min=0, max=100))
    field_list = fields.List(fields.Nested(LeadField), data_key="fields", attribute="fields", load_default=lambda: [
        {"name": "email", "label": "Email", "type": "email", "required": True}])
    consent_text = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))


class Appearance(Schema):
    title = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=120))
    color = fields.String(load_default="#2563eb", validate=validate.Regexp(r"^#[0-9a-fA-F]{6}$"))
    position = fields.String(load_default="right", validate=validate.OneOf(["right", "left"]))
    avatar_url = fields.Url(load_default=None, allow_none=True, schemes={"https", "http"})
    placeholder = fields.String(load_default="Ask a question…", validate=validate.Length(max=200))


class ChatbotConfig(Schema):
    """Everything a chatbot does, with its defaults; stored whole in ``chatbots.config``."""

    system_prompt = fields.String(load_default="You are a helpful assistant for this organization. Answer briefly "
                                               "and only from the documents you are given.",
                                  validate=validate.Length(max=8000))
    provider = fields.String(load_default="extractive", validate=validate.Length(min=1, max=64),
                             metadata={"description": "an installed LLM provider (GET /plugins)"})
    model_params = fields.Dict(load_default=dict, metadata={"description": "the provider's settings: model, "
                                                                           "temperature, max_tokens, base_url, ..."})
    credential_id = fields.UUID(load_default=None, allow_none=True,
                                metadata={"description": "a stored credential holding the provider's API key"})
    welcome_message = fields.String(load_default="Hi! Ask me anything about our documents.",
                                    validate=validate.Length(max=2000))
    fallback_message = fields.String(load_default="Sorry, I could not find that in my documents.",
                                     validate=validate.Length(max=2000))
    retrieval = fields.Nested(RetrievalSettings, load_default=lambda: RetrievalSettings().load({}))
    history_window = fields.Integer(load_default=10, validate=validate.Range(min=0, max=100),
                                    metadata={"description": "earlier messages sent with each question"})
    max_context_tokens = fields.Integer(load_default=3000, validate=validate.Range(min=256, max=1_000_000),
                                        metadata={"description": "the model's window: prompt, passages, history "
                                                                 "and answer together"})
    max_answer_tokens = fields.Integer(load_default=512, validate=validate.Range(min=16, max=100_000))
    citations = fields.Boolean(load_default=True)
    lead_capture = fields.Nested(LeadCapture, load_default=lambda: LeadCapture().load({}))
    appearance = fields.Nested(Appearance, load_default=lambda: Appearance().load({}))
    allowed_origins = fields.List(fields.String(validate=validate.Regexp(ORIGIN, error=(
        "an origin like https://www.example.com (scheme and host, no path)"))), load_default=list)
    rate_limit_per_minute = fields.Integer(load_default=60, validate=validate.Range(min=1, max=100_000))


def resolve_config(workspace: Workspace, current: dict | None, changes: dict | None) -> dict:
    """The whole configuration after ``changes`` (nested sections merge one level deep), validated: 422 naming the
    field, an LLM provider that is not installed, settings it refuses, or a credential of another workspace."""
    if not isinstance(changes or {}, dict):
        raise Invalid("config must be an object of settings", errors={"config": ["must be an object"]})
    merged = dict(current or {})
    for key, value in (changes or {}).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key != "model_params":
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    plugins = state().plugins
    try:
        key = json.dumps(merged, sort_keys=True)
    except (TypeError, ValueError):  # not plain JSON (a UUID object, a key that is not a string): validated as it is
        config = _validated(merged, plugins)
    else:
        kept = current_app.extensions.setdefault("privex.validated_settings", {})  # this app's providers
        config = kept.get(key)
        if config is None:
            config = _validated(json.loads(key), plugins)
            if len(kept) >= VALIDATED_KEPT:
                kept.clear()
            kept[key] = config
        config = copy.deepcopy(config)
    if config["credential_id"] is not None:
        if credentials.in_workspace(workspace.id, config["credential_id"]) is None:
            raise Invalid("credential_id is not a credential of this workspace",
                          errors={"config": {"credential_id": ["not found in this workspace"]}})
        config["credential_id"] = str(config["credential_id"])
    return config


# Settings already validated, per app, by their JSON: a chatflow's llm node resolves its settings for every message, and
# the schema and the provider's checks cost a flow message more CPU than its database statements (BENCHMARKS.md).
# Settings that fail are not kept (their Invalid is raised again each time); callers get a copy to change.
VALIDATED_KEPT = 1024


def _validated(merged: dict, plugins) -> dict:
    """``merged`` checked by the schema and by its provider (installed, and taking these model settings); Invalid
    naming the field otherwise. What does not depend on the workspace: the credential is checked by the caller."""
    try:
        config = ChatbotConfig().load(merged)
    except ValidationError as error:
        raise Invalid("some chatbot settings are invalid; see `errors`", errors={"config": error.messages}) from error
    if config["max_answer_tokens"] >= config["max_context_tokens"]:
        raise Invalid("max_answer_tokens must be smaller than max_context_tokens (the answer shares the window)",
                      errors={"config": {"max_answer_tokens": ["must be smaller than max_context_tokens"]}})
    try:
        provider = plugins.llm_providers[config["provider"]]
    except NotInstalled as error:
        raise Invalid(str(error), errors={"config": {"provider": [str(error)]}}) from error
    settings = getattr(provider, "settings", None)
    if settings is not None:
        try:
            settings(config["model_params"])
        except ValueError as error:
            raise Invalid(str(error), errors={"config": {"model_params": [str(error)]}}) from error
    return config


def knowledge_bases(workspace: Workspace, ids) -> list[KnowledgeBase]:
    """The workspace's knowledge bases with these ids; Invalid naming any that is not one of them."""
    try:
        ids = [value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)) for value in dict.fromkeys(ids or [])]
    except ValueError as error:
        raise Invalid("knowledge_base_ids holds something that is not an id",
                      errors={"knowledge_base_ids": ["not a list of knowledge base ids"]}) from error
    found = db.session.scalars(sa.select(KnowledgeBase).where(KnowledgeBase.workspace_id == workspace.id,
                                                              KnowledgeBase.id.in_(ids))).all() if ids else []
    missing = sorted(str(value) for value in set(ids) - {kb.id for kb in found})
    if missing:
        raise Invalid("some knowledge bases are not in this workspace",
                      errors={"knowledge_base_ids": missing})
    by_id = {kb.id: kb for kb in found}
    return [by_id[value] for value in ids]


# -- drafts --------------------------------------------------------------------------------------------------------

DRAFTS = DraftStore("privex:bot-draft")


def get_draft(workspace: Workspace, draft_id) -> dict:
    draft = DRAFTS.read(draft_id)
    if draft is None or draft["workspace_id"] != str(workspace.id):
        raise NotFound("Chatbot draft not found: it never existed, was finalized or deleted, or expired "
                       f"({current_app.config.get('DRAFT_HOURS', 24)} hours after its last change).")
    return draft


def delete_draft(draft: dict) -> None:
    DRAFTS.delete(draft["id"])
    sessions = sa.select(ChatSession.id).where(ChatSession.user_metadata["draft_id"].astext == draft["id"])
    db.session.execute(sa.delete(ChatSession).where(ChatSession.id.in_(sessions)))
    db.session.commit()


def new_draft(workspace: Workspace, user_id, payload: dict) -> dict:
    check_details({"name": payload.get("name"), **({"description": payload["description"]}
                                                   if "description" in payload else {})})
    config = resolve_config(workspace, {}, payload.get("config"))
    kb_ids = [str(kb.id) for kb in knowledge_bases(workspace, payload.get("knowledge_base_ids"))]
    moment = now().isoformat()
    return DRAFTS.save({"id": str(uuid.uuid4()), "workspace_id": str(workspace.id), "created_at": moment,
                       "created_by_id": str(user_id) if user_id else None, "name": payload["name"],
                       "description": payload.get("description"), "config": config, "knowledge_base_ids": kb_ids})


# -- saved bots ----------------------------------------------------------------------------------------------------

def check_details(changes: dict) -> None:
    """Name, description and status as every front end must give them (the API's schemas say the same)."""
    errors = {}
    check_name(changes, errors)
    check_text(changes, errors, "description")
    if "status" in changes and changes["status"] not in BOT_STATUSES:
        errors["status"] = [f"one of {', '.join(BOT_STATUSES)}"]
    if errors:
        raise Invalid("some chatbot details are invalid; see `errors`", errors=errors)


def create(workspace: Workspace, user_id, payload: dict) -> Chatbot:
    """A live chatbot from a name, optional description, settings and knowledge bases; within the plan's limit.
    With ``status: "draft"`` it is saved but not live (the builder's pages build a bot that way, step by step,
    and publish it with ``update``); ``deployed_at`` is when it went live. Commits."""
    check_details({"name": payload.get("name"), **{key: payload[key] for key in ("description", "status")
                                                   if key in payload}})
    plans.enforce(db.session.get(Organization, workspace.organization_id), "chatbots")
    status = payload.get("status") or "active"
    chatbot = Chatbot(workspace_id=workspace.id, name=payload["name"], description=payload.get("description"),
                      status=status, deployed_at=now() if status == "active" else None,
                      config=resolve_config(workspace, {}, payload.get("config") or {}), created_by_id=user_id)
    chatbot.knowledge_bases = knowledge_bases(workspace, payload.get("knowledge_base_ids"))
    db.session.add(chatbot)
    db.session.commit()
    return chatbot


def update(workspace: Workspace, chatbot: Chatbot, changes: dict) -> Chatbot:
    """Change name, description, status, settings (sections merge one level deep) or knowledge bases; nothing is
    saved unless all of it is valid. Commits."""
    check_details(changes)
    config = resolve_config(workspace, chatbot.config, changes["config"]) if "config" in changes else None
    attached = knowledge_bases(workspace, changes["knowledge_base_ids"]) if "knowledge_base_ids" in changes else None
    if config is not None:
        chatbot.config = config
    if attached is not None:
        chatbot.knowledge_bases = attached
    for key in ("name", "description", "status"):
        if key in changes:
            setattr(chatbot, key, changes[key])
    if chatbot.status == "active" and chatbot.deployed_at is None:  # a bot built as a draft goes live
        chatbot.deployed_at = now()
    db.session.commit()
    return chatbot


def attach(workspace: Workspace, chatbot: Chatbot, knowledge_base_id) -> Chatbot:
    [knowledge_base] = knowledge_bases(workspace, [knowledge_base_id])
    if knowledge_base not in chatbot.knowledge_bases:
        chatbot.knowledge_bases.append(knowledge_base)
    db.session.commit()
    return chatbot


def detach(chatbot: Chatbot, knowledge_base: KnowledgeBase) -> None:
    if knowledge_base not in chatbot.knowledge_bases:
        raise NotFound("This knowledge base is not attached to the chatbot.")
    chatbot.knowledge_bases.remove(knowledge_base)
    db.session.commit()


def delete(chatbot: Chatbot) -> None:
    """Delete a chatbot with its conversations (its leads and token usage stay)."""
    db.session.delete(chatbot)
    db.session.commit()


def update_draft(workspace: Workspace, draft: dict, changes: dict) -> dict:
    check_details({key: changes[key] for key in ("name", "description") if key in changes})
    if "config" in changes:
        draft["config"] = resolve_config(workspace, draft["config"], changes["config"])
    if "knowledge_base_ids" in changes:
        draft["knowledge_base_ids"] = [str(kb.id) for kb in knowledge_bases(workspace, changes["knowledge_base_ids"])]
    for key in ("name", "description"):
        if key in changes:
            draft[key] = changes[key]
    return DRAFTS.save(draft)


def finalize_draft(workspace: Workspace, draft: dict, user_id) -> Chatbot:
    """Save the draft as a live chatbot (settings checked again: a credential may have gone since); the draft and
    its test conversations go."""
    chatbot = create(workspace, user_id, {"name": draft["name"], "description": draft.get("description"),
                                          "config": draft["config"],
                                          "knowledge_base_ids": draft["knowledge_base_ids"]})
    delete_draft(draft)
    return chatbot
