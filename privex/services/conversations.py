"""Conversations: one chat turn for every front end — the public API and the widget, test chats of saved bots and
drafts, and later the builder's preview, messaging channels and chatflows — plus starting sessions, the lead gate
and feedback on answers.

``respond(bot, session, text)`` runs a turn: the lead gate, rate limits, retrieval from the bot's knowledge bases,
fitting context and history into the model's window by a token budget, generation with the bot's LLM provider, and
storing the question and the answer with its citations, latency and token usage. It returns an iterator of events
(``delta``, ``citations``, ``done``) to stream or to ``gather``. Everything the user should see as a refusal (lead
details required, rate limit, provider down before answering) is raised before the first event, as an error of
``privex.services.errors``; a provider failing after it started becomes an ``error`` event.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import sqlalchemy as sa
from flask import current_app
from llama_index.core.utils import get_tokenizer
from redis.commands.core import Script
from sqlalchemy import orm

from privex.clock import now
from privex.contracts import ProviderError, SourceError
from privex.extensions import db, get_redis, state
from privex.models import (ChatMessage, ChatSession, Chatbot, Chatflow, ChatflowVersion, KnowledgeBase,
                           MessageFeedback, Organization, TokenUsage, Workspace)
from privex.plugins import NotInstalled
from privex.services import chatbots, credentials, leads, plans
from privex.services.errors import Invalid, NotFound, ProviderFailed, RateLimited
from privex.services.retrieval import retrieve
from privex.tenancy.context import API_KEY, APIKeyRow, api_key_prefix

log = logging.getLogger(__name__)
CONTEXT_HEADER = ("Answer the user's question from the numbered passages below. Cite the passages you use as [n]. "
                  "If they do not contain the answer, say so instead of guessing.")
MARKER = re.compile(r"\[(\d{1,3})\]")


@functools.lru_cache(maxsize=4096)
def tokens(text: str) -> int:
    """Tokens in ``text``; remembered, since the same passages and history come back turn after turn."""
    return len(get_tokenizer()(text))


@dataclass(frozen=True)
class Bot:
    """What answers a conversation, saved chatbot or draft alike: its settings and where it lives."""

    workspace: Workspace
    organization: Organization
    config: dict
    knowledge_bases: tuple[KnowledgeBase, ...]
    chatbot_id: uuid.UUID | None = None
    draft_id: str | None = None
    # A chatflow answers by running a published graph (``{"nodes", "edges", "version"}``) instead of a prompt.
    chatflow_id: uuid.UUID | None = None
    graph: dict | None = None


def saved_bot(chatbot: Chatbot, workspace: Workspace | None = None,
              organization: Organization | None = None) -> Bot:
    """The bot a saved chatbot is (its workspace and organization read unless given)."""
    if workspace is None or organization is None:
        workspace, organization = db.session.execute(sa.select(Workspace, Organization).join(
            Organization, Organization.id == Workspace.organization_id).where(
            Workspace.id == chatbot.workspace_id)).one()
    return Bot(workspace=workspace, organization=organization, config=chatbot.config,
               knowledge_bases=tuple(chatbot.knowledge_bases), chatbot_id=chatbot.id)


def draft_bot(workspace: Workspace, draft: dict) -> Bot:
    """The bot a chatbot draft is, as it is now."""
    return Bot(workspace=workspace, organization=db.session.get(Organization, workspace.organization_id),
               config=draft["config"], knowledge_bases=tuple(chatbots.knowledge_bases(
                   workspace, draft["knowledge_base_ids"])), draft_id=str(draft["id"]))


def flow_bot(chatflow: Chatflow, version: ChatflowVersion, workspace: Workspace | None = None,
             organization: Organization | None = None) -> Bot:
    """The bot a published chatflow version is: the flow's deployment settings and that version's graph."""
    if workspace is None or organization is None:
        workspace, organization = db.session.execute(sa.select(Workspace, Organization).join(
            Organization, Organization.id == Workspace.organization_id).where(
            Workspace.id == chatflow.workspace_id)).one()
    return Bot(workspace=workspace, organization=organization, config=chatflow.config, knowledge_bases=(),
               chatflow_id=chatflow.id, graph={"nodes": version.nodes, "edges": version.edges,
                                               "version": version.number})


def live_bot(public_id: str, *options) -> Chatbot | Chatflow:
    """The live chatbot, or published chatflow, with this public id (``options``: what to load with a chatbot);
    NotFound for any other. Both carry what the public routes read: id, workspace, name, status and ``config``."""
    chatbot = db.session.scalars(sa.select(Chatbot).where(Chatbot.public_id == public_id).options(*options)
                                 ).unique().first()
    if chatbot is None:
        chatflow = db.session.scalar(sa.select(Chatflow).where(Chatflow.public_id == public_id))
        if chatflow is not None and chatflow.status == "active" and chatflow.version:
            return chatflow
    if chatbot is None or chatbot.status != "active":
        raise NotFound("This chatbot does not exist or is not live.")
    return chatbot


# A fingerprint of everything a message reads about its bot: the bot's, its workspace's and its organization's rows
# and the rows of its knowledge bases, as PostgreSQL writes them out. Any change to any of them, by any process and
# by any means (the builder, the API, an admin's SQL), changes it; a timestamp would not, for two edits in one
# transaction share ``now()``.
BOT_VERSION = sa.literal_column(
    "md5(ROW(chatbots.*)::text || ROW(workspaces.*)::text || ROW(organizations.*)::text || coalesce(("
    "SELECT string_agg(ROW(kb.*)::text, ',' ORDER BY kb.id) FROM knowledge_bases AS kb "
    "JOIN chatbot_knowledge_bases AS link ON link.knowledge_base_id = kb.id "
    "WHERE link.chatbot_id = chatbots.id), ''))")
BOT_CACHE_SIZE = 1024


class BotCache:
    """Live bots already read, per app (so per process): their id -> (fingerprint, chatbot, bot). The chatbot,
    workspace, organization and knowledge bases in it are detached from any database session and only read."""

    def __init__(self, size: int = BOT_CACHE_SIZE):
        self.size, self.entries, self.lock = size, {}, threading.Lock()

    def get(self, chatbot_id, version):
        entry = self.entries.get(chatbot_id)
        return entry[1:] if entry is not None and entry[0] == version else None

    def put(self, chatbot_id, version, chatbot: Chatbot, bot: Bot) -> None:
        with self.lock:
            if len(self.entries) >= self.size:
                self.entries.pop(next(iter(self.entries)))  # the oldest read: a simple bound, no LRU bookkeeping
            self.entries[chatbot_id] = (version, chatbot, bot)


def bot_cache() -> BotCache:
    return current_app.extensions.setdefault("privex.bot_cache", BotCache())


class Turn(NamedTuple):
    """A message of a conversation's history, as ``fit`` reads it."""

    role: str
    content: str


class SessionRow(NamedTuple):
    """What a turn reads of its session (``respond`` and the chatflow turn take it where they take a ChatSession):
    read as plain columns with the bot on the path of every public message, where loading a ChatSession cost more
    than the statement. ``history``: its last ``history_window`` messages, oldest first, read with it for a chatbot
    (None for a chatflow, which keeps its own memory)."""

    id: uuid.UUID
    workspace_id: uuid.UUID
    is_test: bool
    user_metadata: dict
    history: list[Turn] | None


HISTORY_WINDOW = 10  # messages of history a bot remembers unless its ``history_window`` says otherwise
_SESSION_COLUMNS = (ChatSession.id, ChatSession.workspace_id, ChatSession.is_test, ChatSession.user_metadata)
# ``recent_history`` in the statement that reads the bot and the session (a statement less a message), with the
# window of the bot's row read by that statement, the one its fingerprint is of: [[role, content], ...] oldest first.
_HISTORY_OF_SESSION = sa.literal_column(
    "(SELECT coalesce(json_agg(json_build_array(recent.role, recent.content) ORDER BY recent.created_at), '[]') "
    "FROM (SELECT role, content, created_at FROM chat_messages WHERE chat_messages.session_id = chat_sessions.id "
    "ORDER BY created_at DESC LIMIT coalesce(trunc((chatbots.config ->> 'history_window')::numeric)::int, "
    f"{HISTORY_WINDOW})) AS recent)")


def live_bot_and_session(public_id: str, session_id, api_key: str | None = None
                         ) -> tuple[Chatbot | Chatflow, Bot, SessionRow | None, APIKeyRow | None]:
    """What a message to a live bot reads: the bot (as a Chatbot, or Chatflow, to authorize the caller with, and as
    the Bot that answers), its session ``session_id`` (None when the bot has no such session: the caller answers 404
    once it has authorized the caller) and the row of the API key the caller sent (``privex.tenancy.context``: None
    without one, or when no key has its prefix). NotFound for a bot that is not live.

    One statement reads the session with its recent history, the key and the bot's fingerprint, as plain columns;
    the bot itself comes from ``bot_cache`` while its fingerprint is unchanged, so the very next message after any
    edit, in any process, reads the new bot, and the key is read afresh for every message, so a revoked one is
    refused at once."""
    params = {"public_id": public_id, "session_id": session_id,
              "key_prefix": None if api_key is None else api_key_prefix(api_key)}
    row = db.session.connection().execute(_BOT_AND_SESSION, params).first()
    if row is None:
        return _live_flow_and_session(params)
    version, chatbot_id, status = row[:3]
    if status != "active":
        raise NotFound("This chatbot does not exist or is not live.")
    cached = bot_cache().get(chatbot_id, version)
    if cached is None:
        cached = _read_bot(chatbot_id)
    return cached[0], cached[1], *_session_and_key(row, 3)


def _session_and_key(row, start: int) -> tuple[SessionRow | None, APIKeyRow | None]:
    """The session's and the API key's columns of ``row`` from ``start`` on (each all null when not found)."""
    middle = start + len(SessionRow._fields)
    session, key = row[start:middle], row[middle:middle + len(APIKeyRow._fields)]
    history = None if session[-1] is None else [Turn(*turn) for turn in session[-1]]
    return (None if session[0] is None else SessionRow(*session[:-1], history=history),
            None if key[0] is None else APIKeyRow._make(key))


# The key a message is sent with, outer-joined to the bot's row (it is one row or none).
_KEY = API_KEY.subquery("api_key")

# ``live_bot_and_session``'s statement, built once like ``_HISTORY`` (it runs for every message).
_BOT_AND_SESSION = (
    sa.select(BOT_VERSION, Chatbot.id, Chatbot.status, *_SESSION_COLUMNS, _HISTORY_OF_SESSION, *_KEY.c)
    .select_from(Chatbot)
    .join(Workspace, Workspace.id == Chatbot.workspace_id)
    .join(Organization, Organization.id == Workspace.organization_id)
    .outerjoin(ChatSession, sa.and_(ChatSession.id == sa.bindparam("session_id", type_=ChatSession.id.type),
                                    ChatSession.chatbot_id == Chatbot.id))
    .outerjoin(_KEY, sa.true())
    .where(Chatbot.public_id == sa.bindparam("public_id", type_=Chatbot.public_id.type)))


def _live_flow_and_session(params: dict) -> tuple[Chatflow, Bot, SessionRow | None, APIKeyRow | None]:
    """``live_bot_and_session`` for a chatflow. One statement reads the session, the key and the flow's fingerprint
    (its, its workspace's and its organization's rows: a publish, a rollback, a status or settings change all change
    it); the flow and its deployed version come from ``bot_cache`` while the fingerprint is unchanged."""
    row = db.session.connection().execute(_FLOW_AND_SESSION, params).first()
    if row is None or row.status != "active" or not row.version:
        raise NotFound("This chatbot does not exist or is not live.")
    fingerprint, chatflow_id = row[:2]
    cached = bot_cache().get(("chatflow", chatflow_id), fingerprint)
    if cached is None:
        cached = _read_flow(chatflow_id, fingerprint)
    return cached[0], cached[1], *_session_and_key(row, 4)


FLOW_VERSION = sa.literal_column(
    "md5(ROW(chatflows.*)::text || ROW(workspaces.*)::text || ROW(organizations.*)::text)")
_FLOW_AND_SESSION = (
    sa.select(FLOW_VERSION, Chatflow.id, Chatflow.status, Chatflow.version, *_SESSION_COLUMNS, sa.null(), *_KEY.c)
    .select_from(Chatflow)
    .join(Workspace, Workspace.id == Chatflow.workspace_id)
    .join(Organization, Organization.id == Workspace.organization_id)
    .outerjoin(ChatSession, sa.and_(ChatSession.id == sa.bindparam("session_id", type_=ChatSession.id.type),
                                    ChatSession.chatflow_id == Chatflow.id))
    .outerjoin(_KEY, sa.true())
    .where(Chatflow.public_id == sa.bindparam("public_id", type_=Chatflow.public_id.type)))


def _read_flow(chatflow_id, fingerprint) -> tuple[Chatflow, Bot]:
    """The flow with its deployed version read whole, kept in ``bot_cache`` under ``fingerprint``, and detached."""
    chatflow, version, workspace, organization = db.session.execute(
        sa.select(Chatflow, ChatflowVersion, Workspace, Organization)
        .join(ChatflowVersion, sa.and_(ChatflowVersion.chatflow_id == Chatflow.id,
                                       ChatflowVersion.number == Chatflow.version))
        .join(Workspace, Workspace.id == Chatflow.workspace_id)
        .join(Organization, Organization.id == Workspace.organization_id)
        .where(Chatflow.id == chatflow_id)).one()
    bot = flow_bot(chatflow, version, workspace, organization)
    for instance in (chatflow, version, workspace, organization):
        db.session.expunge(instance)
    bot_cache().put(("chatflow", chatflow_id), fingerprint, chatflow, bot)
    return chatflow, bot


def _owner_column(bot: Chatbot | Chatflow):
    """The session column naming this bot: ``chatflow_id`` for a chatflow, ``chatbot_id`` for a chatbot."""
    return ChatSession.chatflow_id if isinstance(bot, Chatflow) else ChatSession.chatbot_id


def _read_bot(chatbot_id) -> tuple[Chatbot, Bot]:
    """The bot read whole, kept in ``bot_cache`` under the fingerprint read with it, and detached."""
    version, chatbot, workspace, organization = db.session.execute(
        sa.select(BOT_VERSION, Chatbot, Workspace, Organization)
        .join(Workspace, Workspace.id == Chatbot.workspace_id)
        .join(Organization, Organization.id == Workspace.organization_id)
        .where(Chatbot.id == chatbot_id).options(orm.selectinload(Chatbot.knowledge_bases))).one()
    bot = saved_bot(chatbot, workspace, organization)
    for instance in (chatbot, workspace, organization, *bot.knowledge_bases):
        db.session.expunge(instance)
    bot_cache().put(chatbot_id, version, chatbot, bot)
    return chatbot, bot


def start_session(chatbot: Chatbot, *, channel: str, external_user_id: str | None = None,
                  metadata: dict | None = None) -> ChatSession:
    """A new conversation with a live bot or chatflow, from a channel (``widget``, ``api``, a messaging channel).
    Commits."""
    owner = {"chatflow_id" if isinstance(chatbot, Chatflow) else "chatbot_id": chatbot.id}
    session = ChatSession(workspace_id=chatbot.workspace_id, channel=channel, external_user_id=external_user_id,
                          user_metadata=dict(metadata or {}), **owner)
    db.session.add(session)
    db.session.commit()
    return session


def session_of(chatbot: Chatbot, session_id) -> ChatSession:
    return found_session(db.session.scalar(sa.select(ChatSession).where(ChatSession.id == session_id,
                                                                        _owner_column(chatbot) == chatbot.id)))


def found_session(session: ChatSession | SessionRow | None) -> ChatSession | SessionRow:
    if session is None:
        raise NotFound("Session not found: start one with POST .../sessions")
    return session


def test_session(bot: Bot, session_id=None) -> ChatSession:
    """The test conversation to continue (``session_id``), or a new one; test conversations stay out of analytics
    and skip the lead gate."""
    if session_id:
        session = db.session.scalar(sa.select(ChatSession).where(
            ChatSession.workspace_id == bot.workspace.id, ChatSession.id == session_id,
            ChatSession.is_test.is_(True)))
        if session is None or session.chatbot_id != bot.chatbot_id or session.chatflow_id != bot.chatflow_id or (
                session.user_metadata.get("draft_id") != bot.draft_id):
            raise NotFound("Test session not found.", errors={"session_id": ["no test conversation of this bot"]})
        return session
    session = ChatSession(workspace_id=bot.workspace.id, chatbot_id=bot.chatbot_id, chatflow_id=bot.chatflow_id,
                          channel="test", is_test=True,
                          user_metadata={"draft_id": bot.draft_id} if bot.draft_id else {})
    db.session.add(session)
    db.session.flush()
    return session


def rate_answer(chatbot: Chatbot, message_id, rating: int, comment: str | None = None) -> MessageFeedback:
    """Thumbs up (1) or down (-1) on one of the bot's answers; a later vote replaces an earlier one. Commits."""
    if rating not in (1, -1):
        raise Invalid("rate an answer 1 (good) or -1 (bad)", errors={"rating": ["must be 1 or -1"]})
    message = db.session.scalar(sa.select(ChatMessage).join(ChatSession).where(
        ChatMessage.id == message_id, ChatMessage.role == "assistant", _owner_column(chatbot) == chatbot.id))
    if message is None:
        raise NotFound("Answer not found for this bot.")
    feedback = message.feedback or MessageFeedback(workspace_id=message.workspace_id, message_id=message.id,
                                                   rating=rating)
    feedback.rating, feedback.comment = rating, comment
    db.session.add(feedback)
    db.session.commit()
    return feedback


# A turn counted in its window's key, which expires once the window is over: one command for Redis, atomic, where the
# MULTI/INCR/EXPIRE/EXEC pipeline it replaces was four, and a quarter more CPU here.
_COUNT_TURN = Script(None, b"local n = redis.call('INCR', KEYS[1]) "
                           b"if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end return n")


def rate_limit(key: str, per_minute: int | None) -> None:
    """RateLimited once ``per_minute`` turns were taken under ``key`` this minute (a fixed window)."""
    if not per_minute:
        return
    window = int(time.time() // 60)
    count = _COUNT_TURN(keys=[f"privex:rate:{key}:{window}"], args=[120], client=get_redis())
    if count > per_minute:
        raise RateLimited(f"too many messages: at most {per_minute} a minute here; try again shortly",
                          retry_after=60 - int(time.time()) % 60)


def provider_for(config: dict):
    try:
        return state().plugins.llm_providers[config["provider"]]
    except NotInstalled as error:
        raise Invalid(str(error), errors={"config": {"provider": [str(error)]}}) from error


def provider_params(config: dict, workspace: Workspace) -> dict:
    """The provider's settings: the bot's model parameters, its fallback message where the provider takes one, and
    the API key of the credential it names (decrypted now, audited)."""
    provider = provider_for(config)
    params = dict(config.get("model_params") or {})
    properties = (provider.config_schema or {}).get("properties", {})
    if "fallback_message" in properties and config.get("fallback_message"):
        params.setdefault("fallback_message", config["fallback_message"])
    if config.get("credential_id"):
        credential = credentials.in_workspace(workspace.id, config["credential_id"])
        if credential is None:
            raise Invalid("the credential this bot's provider uses was deleted; choose another",
                          errors={"config": {"credential_id": ["deleted"]}})
        try:
            secret = credentials.use(credential, "chat")
        except credentials.CredentialUnreadable as error:
            raise Invalid(f"this bot's provider cannot be used: {error}",
                          errors={"config": {"credential_id": [str(error)]}}) from error
        except SourceError as error:  # its OAuth token endpoint failed
            raise ProviderFailed(str(error)) from error
        params["api_key"] = secret.get("api_key") or secret.get("token") or next(iter(secret.values()), None)
    return params


def gather_context(bot: Bot, question: str) -> list[dict]:
    """The best chunks across the bot's knowledge bases, numbered for citation."""
    retrieval = bot.config.get("retrieval") or {}
    top_k = int(retrieval.get("top_k") or 5)
    hits = []
    for knowledge_base in bot.knowledge_bases:
        hits.extend(retrieve(knowledge_base, question, mode=retrieval.get("mode") or "hybrid", top_k=top_k,
                             threshold=retrieval.get("threshold")))
    hits.sort(key=lambda hit: hit.score, reverse=True)
    return [{"n": number, "text": hit.text, "document_id": hit.document_id, "document_name": hit.document_name,
             "position": hit.position, "score": round(hit.score, 4)}
            for number, hit in enumerate(hits[:top_k], start=1)]


def fit(config: dict, history, context: list[dict], question: str) -> tuple[list, list[dict]]:
    """The messages to send and the context kept, within ``max_context_tokens`` minus the answer's share: the
    system prompt and the question always, then passages best first, then history (oldest first, anything with a
    ``role`` and ``content``) newest first, at most ``history_window`` messages of it."""
    budget = int(config.get("max_context_tokens") or 3000) - int(config.get("max_answer_tokens") or 512)
    system = config.get("system_prompt") or ""
    budget -= tokens(system) + tokens(question) + tokens(CONTEXT_HEADER)
    kept = []
    for chunk in context:
        cost = tokens(chunk["text"]) + 8
        if cost > budget:
            break
        kept.append(chunk)
        budget -= cost
    turns = []
    window = history_window(config)
    for message in reversed(history[-window:] if window else []):
        cost = tokens(message.content) + 4
        if cost > budget:
            break
        turns.append({"role": message.role, "content": message.content})
        budget -= cost
    passages = "\n\n".join(f"[{chunk['n']}] ({chunk['document_name']}) {chunk['text']}" for chunk in kept)
    prompt = system + (f"\n\n{CONTEXT_HEADER}\n\n{passages}" if kept else "")
    messages = ([{"role": "system", "content": prompt}] if prompt.strip() else []) + list(reversed(turns)) + [
        {"role": "user", "content": question}]
    return messages, kept


def history_window(config: dict) -> int:
    window = config.get("history_window")
    return HISTORY_WINDOW if window is None else int(window)


def recent_history(session_id, config: dict) -> list:
    """The last ``history_window`` messages of a session, oldest first (role and content only: a long
    conversation costs no more than a short one)."""
    window = history_window(config)
    if not window:
        return []
    rows = db.session.connection().execute(_HISTORY, {"session_id": session_id, "window": window}).all()
    return rows[::-1]


_HISTORY = (sa.select(ChatMessage.role, ChatMessage.content)
            .where(ChatMessage.session_id == sa.bindparam("session_id", type_=ChatMessage.session_id.type))
            .order_by(ChatMessage.created_at.desc()).limit(sa.bindparam("window", type_=sa.Integer)))


def cited(answer: str, context: list[dict]) -> list[dict]:
    """The passages the answer cites with [n]; all passages given when it cites none by number."""
    numbers = {int(found) for found in MARKER.findall(answer)}
    chosen = [chunk for chunk in context if chunk["n"] in numbers]
    return chosen or context


@dataclass(frozen=True)
class Answering:
    """What storing the answer needs, as plain values: the stream is read after the request's database session
    has closed, so the ORM objects of the request cannot be used any more."""

    workspace_id: object
    organization_id: object
    session_id: object
    chatbot_id: object
    provider: str
    citations: bool
    started: float


def respond(bot: Bot, session: ChatSession | SessionRow, text: str) -> Iterator[dict]:
    """One turn of ``session`` with ``bot``: checks, retrieval and storing the question happen now, generation as
    the returned iterator is read."""
    question = text.strip() if isinstance(text, str) else ""
    if not question:
        raise Invalid("write a message", errors={"message": ["empty"]})
    config = bot.config
    if not session.is_test:
        leads.check_gate(config, session)
    if (bot.chatbot_id or bot.chatflow_id) is not None and not session.is_test:
        rate_limit(f"bot:{bot.chatbot_id or bot.chatflow_id}", config.get("rate_limit_per_minute"))
    rate_limit(f"org:{bot.organization.id}", plans.LIMITS[bot.organization.subscription_tier]["messages_per_minute"])
    if bot.graph is not None:
        from privex.services.chatflows import conversation as flows  # it builds on this module
        return flows.respond(bot, session, question)
    provider = provider_for(config)
    params = provider_params(config, bot.workspace)
    started = time.perf_counter()
    answering = Answering(workspace_id=session.workspace_id, organization_id=bot.organization.id,
                          session_id=session.id, chatbot_id=bot.chatbot_id, provider=provider.name,
                          citations=bool(config.get("citations", True)), started=started)
    history = getattr(session, "history", None)  # read with the session (SessionRow), or read now
    if history is None:
        history = recent_history(session.id, config)
    context = gather_context(bot, question)
    messages, context = fit(config, history, context, question)
    store(answering.session_id, {"workspace_id": answering.workspace_id, "role": "user", "content": question})
    db.session.commit()  # ends the transaction: no connection is held while the model answers
    try:
        events = provider.chat(messages, params, context=context)
        first = next(events)  # a provider that fails before answering is refused, not a broken stream
    except ValueError as error:
        raise Invalid(f"the bot's model settings are invalid: {error}",
                      errors={"config": {"model_params": [str(error)]}}) from error
    except ProviderError as error:
        raise ProviderFailed(f"the model did not answer: {error}", timed_out=error.status == 504) from error
    except StopIteration as error:  # a provider plugin that breaks the contract: still the provider's fault
        raise ProviderFailed(f"the model did not answer: provider {provider.name!r} returned no events") from error
    return _stream(answering, first, events, context)


def _stream(answering: Answering, first: dict, events, context) -> Iterator[dict]:
    parts, finished = [], None
    try:
        for event in _chain(first, events):
            if event["type"] == "delta":
                parts.append(event["text"])
                yield event
            elif event["type"] == "done":
                finished = event
    except ProviderError as error:
        yield {"type": "error", "code": error.status, "message": f"the model stopped answering: {error}"}
        return
    answer = "".join(parts)
    citations = cited(answer, context) if answering.citations else []
    finished = finished or {}
    usage = finished.get("usage") or {}
    latency = int((time.perf_counter() - answering.started) * 1000)
    message_id = uuid.uuid4()
    store(answering.session_id, {
        "id": message_id, "workspace_id": answering.workspace_id, "role": "assistant", "content": answer,
        "citations": citations, "model": finished.get("model"), "latency_ms": latency,
        "prompt_tokens": usage.get("prompt_tokens", 0), "completion_tokens": usage.get("completion_tokens", 0),
        "metadata": {"finish_reason": finished.get("finish_reason")}}, usage={
        "workspace_id": answering.workspace_id, "organization_id": answering.organization_id,
        "chatbot_id": answering.chatbot_id, "message_id": message_id, "provider": answering.provider,
        "model": finished.get("model"), "prompt_tokens": usage.get("prompt_tokens", 0),
        "completion_tokens": usage.get("completion_tokens", 0), "estimated": bool(usage.get("estimated"))},
        commit=True)
    yield {"type": "citations", "citations": citations}
    yield {"type": "done", "message_id": str(message_id), "usage": usage, "latency_ms": latency,
           "finish_reason": finished.get("finish_reason")}


def store(session_id, message: dict, usage: dict | None = None, *, commit: bool = False) -> None:
    """Store a message of the session (and the token usage of an answer) and move the session's
    ``last_message_at``, in one statement (its inserts are common table expressions of the session's update): one
    round trip and no unit of work, on the path of every message. Columns are the tables' (``metadata``, not the
    model's ``metadata_``); every value a default would give is set here, as a CTE's insert takes no Python
    defaults.

    ``commit``: the statement is stored for good before this returns. When the database session holds no
    transaction, it runs alone on a pooled connection in autocommit, where one statement is one transaction: the
    round trips of BEGIN and COMMIT are saved. Otherwise (a transaction is open, or the session is bound to a
    connection, as the test suite's rolled-back one) it runs in the session's transaction, which then commits."""
    stamp = now()
    message = {"id": uuid.uuid4(), "session_id": session_id, "citations": [], "metadata": {}, "prompt_tokens": 0,
               "completion_tokens": 0, "created_at": stamp, **message}
    usage = None if usage is None else {"id": uuid.uuid4(), **usage}
    params = {"session": session_id, "stamp": stamp, **{f"m_{key}": value for key, value in message.items()},
              **{f"u_{key}": value for key, value in (usage or {}).items()}}
    statement = _store_statement(tuple(message), None if usage is None else tuple(usage))
    bind = db.session.get_bind() if commit and not db.session().in_transaction() else None
    if isinstance(bind, sa.Engine):
        with bind.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(statement, params)
        return
    db.session.connection().execute(statement, params)
    if commit:
        db.session.commit()


@functools.lru_cache(maxsize=64)
def _store_statement(message_columns: tuple, usage_columns: tuple | None):
    """``store``'s statement for messages (and usage) with these columns, every value a bound parameter: built
    once per shape (a question, an answer with its usage), since building it cost more CPU than running it."""
    messages, usages, sessions = ChatMessage.__table__, TokenUsage.__table__, ChatSession.__table__

    def bound(table, prefix: str, columns: tuple) -> dict:
        return {column: sa.bindparam(prefix + column, type_=table.c[column].type) for column in columns}

    update = (sa.update(sessions).where(sessions.c.id == sa.bindparam("session", type_=sessions.c.id.type))
              .values(last_message_at=sa.bindparam("stamp", type_=sessions.c.last_message_at.type)))
    update = update.add_cte(sa.insert(messages).values(bound(messages, "m_", message_columns)).cte("stored_message"))
    if usage_columns is not None:
        update = update.add_cte(sa.insert(usages).values(bound(usages, "u_", usage_columns)).cte("stored_usage"))
    return update


def _chain(first, rest):
    yield first
    yield from rest


def gather(events: Iterator[dict]) -> dict:
    """A whole answer from a turn's events (the non-streaming API)."""
    answer, result = [], {}
    for event in events:
        if event["type"] == "delta":
            answer.append(event["text"])
        elif event["type"] == "citations":
            result["citations"] = event["citations"]
        elif event["type"] == "done":
            result.update(message_id=event["message_id"], usage=event["usage"], latency_ms=event["latency_ms"])
        elif event["type"] == "error":
            raise ProviderFailed(event["message"], timed_out=event["code"] == 504)
    return {"answer": "".join(answer), **result}
