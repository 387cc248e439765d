"""One chat turn: retrieve from the bot's knowledge bases, fit the context and history into the model's window by a
token budget, generate with the bot's LLM provider, and store the question and the answer with its citations,
latency and token usage.

``turn()`` returns an iterator of events for the API to stream (``delta``, ``citations``, ``done``) or to gather.
Everything the user should see as an HTTP error (rate limit, provider down before answering) is raised before the
first event; a provider failing after it started becomes an ``error`` event.
"""

from __future__ import annotations

import functools
import logging
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import sqlalchemy as sa
from flask_smorest import abort
from llama_index.core.utils import get_tokenizer

from privex.auth.tokens import now
from privex.contracts import ProviderError, SourceError
from privex.extensions import db, get_redis, state
from privex.models import ChatMessage, ChatSession, Chatbot, KnowledgeBase, TokenUsage, Workspace
from privex.plugins import NotInstalled
from privex.services import credentials, plans
from privex.services.retrieval import retrieve

log = logging.getLogger(__name__)
CONTEXT_HEADER = ("Answer the user's question from the numbered passages below. Cite the passages you use as [n]. "
                  "If they do not contain the answer, say so instead of guessing.")
MARKER = re.compile(r"\[(\d{1,3})\]")


@functools.lru_cache(maxsize=4096)
def tokens(text: str) -> int:
    """Tokens in ``text``; remembered, since the same passages and history come back turn after turn."""
    return len(get_tokenizer()(text))


@dataclass
class Turn:
    """What one turn needs, independent of whether the bot is saved or a draft."""

    workspace: Workspace
    config: dict
    knowledge_bases: list[KnowledgeBase]
    session: ChatSession
    chatbot_id: object = None
    events: list = field(default_factory=list)


def rate_limit(key: str, per_minute: int | None) -> None:
    """429 with Retry-After once ``per_minute`` turns were taken under ``key`` this minute (a fixed window)."""
    if not per_minute:
        return
    window = int(time.time() // 60)
    redis_key = f"privex:rate:{key}:{window}"
    pipeline = get_redis().pipeline()
    pipeline.incr(redis_key)
    pipeline.expire(redis_key, 120)
    count = pipeline.execute()[0]
    if count > per_minute:
        abort(429, message=f"too many messages: at most {per_minute} a minute here; try again shortly",
              headers={"Retry-After": str(60 - int(time.time()) % 60)})


def provider_for(config: dict):
    try:
        return state().plugins.llm_providers[config["provider"]]
    except NotInstalled as error:
        abort(422, message=str(error))


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
            abort(422, message="the credential this bot's provider uses was deleted; choose another")
        try:
            secret = credentials.use(credential, "chat")
        except credentials.CredentialUnreadable as error:
            abort(422, message=f"this bot's provider cannot be used: {error}")
        except SourceError as error:  # its OAuth token endpoint failed
            abort(502, message=str(error))
        params["api_key"] = secret.get("api_key") or secret.get("token") or next(iter(secret.values()), None)
    return params


def gather_context(turn: Turn, question: str) -> list[dict]:
    """The best chunks across the bot's knowledge bases, numbered for citation."""
    retrieval = turn.config.get("retrieval") or {}
    top_k = int(retrieval.get("top_k") or 5)
    hits = []
    for knowledge_base in turn.knowledge_bases:
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
    for message in reversed(history[len(history) - window:] if window else []):
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
    return 10 if window is None else int(window)


def recent_history(session_id, config: dict) -> list:
    """The last ``history_window`` messages of a session, oldest first (role and content only: a long
    conversation costs no more than a short one)."""
    window = history_window(config)
    if not window:
        return []
    rows = db.session.execute(sa.select(ChatMessage.role, ChatMessage.content).where(
        ChatMessage.session_id == session_id).order_by(ChatMessage.created_at.desc()).limit(window)).all()
    return rows[::-1]


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


def turn(turn: Turn, question: str, *, organization) -> Iterator[dict]:
    """Run one turn; checks, retrieval and storing the user's message happen now, generation as the iterator is
    read."""
    config, session = turn.config, turn.session
    if turn.chatbot_id is not None and not session.is_test:
        rate_limit(f"bot:{turn.chatbot_id}", config.get("rate_limit_per_minute"))
    rate_limit(f"org:{organization.id}", plans.LIMITS[organization.subscription_tier]["messages_per_minute"])
    provider = provider_for(config)
    params = provider_params(config, turn.workspace)
    started = time.perf_counter()
    answering = Answering(workspace_id=session.workspace_id, organization_id=organization.id, session_id=session.id,
                          chatbot_id=turn.chatbot_id, provider=provider.name,
                          citations=bool(config.get("citations", True)), started=started)
    history = recent_history(session.id, config)
    context = gather_context(turn, question)
    messages, context = fit(config, history, context, question)
    db.session.add(ChatMessage(workspace_id=answering.workspace_id, session_id=answering.session_id, role="user",
                               content=question, created_at=now()))
    session.last_message_at = now()
    db.session.commit()  # ends the transaction: no connection is held while the model answers
    try:
        events = provider.chat(messages, params, context=context)
        first = next(events)  # a provider that fails before answering is an HTTP error, not a broken stream
    except ValueError as error:
        abort(422, message=f"the bot's model settings are invalid: {error}")
    except ProviderError as error:
        abort(error.status, message=f"the model did not answer: {error}")
    except StopIteration:  # a provider plugin that breaks the contract: still the provider's fault, not ours
        abort(502, message=f"the model did not answer: provider {provider.name!r} returned no events")
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
    # Three statements and one commit; the answer's id is chosen here, so nothing waits for a flush.
    db.session.add(ChatMessage(id=message_id, workspace_id=answering.workspace_id, session_id=answering.session_id,
                               role="assistant", content=answer, citations=citations, model=finished.get("model"),
                               latency_ms=latency, prompt_tokens=usage.get("prompt_tokens", 0),
                               completion_tokens=usage.get("completion_tokens", 0), created_at=now(),
                               metadata_={"finish_reason": finished.get("finish_reason")}))
    db.session.add(TokenUsage(workspace_id=answering.workspace_id, organization_id=answering.organization_id,
                              chatbot_id=answering.chatbot_id, message_id=message_id, provider=answering.provider,
                              model=finished.get("model"), prompt_tokens=usage.get("prompt_tokens", 0),
                              completion_tokens=usage.get("completion_tokens", 0),
                              estimated=bool(usage.get("estimated"))))
    db.session.execute(sa.update(ChatSession).where(ChatSession.id == answering.session_id)
                       .values(last_message_at=now()))
    db.session.commit()
    yield {"type": "citations", "citations": citations}
    yield {"type": "done", "message_id": str(message_id), "usage": usage, "latency_ms": latency,
           "finish_reason": finished.get("finish_reason")}


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
            abort(event["code"], message=event["message"])
    return {"answer": "".join(answer), **result}


def bot_knowledge_bases(chatbot: Chatbot) -> list[KnowledgeBase]:
    return list(chatbot.knowledge_bases)
