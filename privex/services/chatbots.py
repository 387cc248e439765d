"""Chatbots: their configuration (one validated JSON document), drafts in Redis, and the knowledge bases they answer
from. The chat itself is ``privex.services.chat``.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from flask import current_app
from flask_smorest import abort
from marshmallow import Schema, ValidationError, fields, validate

from privex.auth.tokens import now
from privex.extensions import db, state
from privex.models import ChatSession, KnowledgeBase, Workspace
from privex.plugins import NotInstalled
from privex.services import credentials
from privex.services.redis_drafts import DraftStore

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
    merged = dict(current or {})
    for key, value in (changes or {}).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key != "model_params":
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    try:
        config = ChatbotConfig().load(merged)
    except ValidationError as error:
        abort(422, message="some chatbot settings are invalid; see `errors`", errors={"config": error.messages})
    if config["max_answer_tokens"] >= config["max_context_tokens"]:
        abort(422, message="max_answer_tokens must be smaller than max_context_tokens (the answer shares the window)",
              errors={"config": {"max_answer_tokens": ["must be smaller than max_context_tokens"]}})
    try:
        provider = state().plugins.llm_providers[config["provider"]]
    except NotInstalled as error:
        abort(422, message=str(error), errors={"config": {"provider": [str(error)]}})
    settings = getattr(provider, "settings", None)
    if settings is not None:
        try:
            settings(config["model_params"])
        except ValueError as error:
            abort(422, message=str(error), errors={"config": {"model_params": [str(error)]}})
    if config["credential_id"] is not None:
        if credentials.in_workspace(workspace.id, config["credential_id"]) is None:
            abort(422, message="credential_id is not a credential of this workspace",
                  errors={"config": {"credential_id": ["not found in this workspace"]}})
        config["credential_id"] = str(config["credential_id"])
    return config


def knowledge_bases(workspace: Workspace, ids) -> list[KnowledgeBase]:
    """The workspace's knowledge bases with these ids; 422 naming any that is not one of them."""
    ids = [uuid.UUID(str(value)) for value in dict.fromkeys(ids or [])]
    found = db.session.scalars(sa.select(KnowledgeBase).where(KnowledgeBase.workspace_id == workspace.id,
                                                              KnowledgeBase.id.in_(ids))).all() if ids else []
    missing = sorted(str(value) for value in set(ids) - {kb.id for kb in found})
    if missing:
        abort(422, message="some knowledge bases are not in this workspace",
              errors={"knowledge_base_ids": missing})
    by_id = {kb.id: kb for kb in found}
    return [by_id[value] for value in ids]


# -- drafts --------------------------------------------------------------------------------------------------------

DRAFTS = DraftStore("privex:bot-draft")


def get_draft(workspace: Workspace, draft_id) -> dict:
    draft = DRAFTS.read(draft_id)
    if draft is None or draft["workspace_id"] != str(workspace.id):
        abort(404, message="Chatbot draft not found: it never existed, was finalized or deleted, or expired "
                           f"({current_app.config.get('DRAFT_HOURS', 24)} hours after its last change).")
    return draft


def delete_draft(draft: dict) -> None:
    DRAFTS.delete(draft["id"])
    sessions = sa.select(ChatSession.id).where(ChatSession.user_metadata["draft_id"].astext == draft["id"])
    db.session.execute(sa.delete(ChatSession).where(ChatSession.id.in_(sessions)))
    db.session.commit()


def new_draft(workspace: Workspace, user_id, payload: dict) -> dict:
    config = resolve_config(workspace, {}, payload.get("config"))
    kb_ids = [str(kb.id) for kb in knowledge_bases(workspace, payload.get("knowledge_base_ids"))]
    moment = now().isoformat()
    return DRAFTS.save({"id": str(uuid.uuid4()), "workspace_id": str(workspace.id), "created_at": moment,
                       "created_by_id": str(user_id) if user_id else None, "name": payload["name"],
                       "description": payload.get("description"), "config": config, "knowledge_base_ids": kb_ids})
