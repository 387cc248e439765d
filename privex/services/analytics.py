"""Analytics: what a chatbot's conversations, an organization's token usage and a knowledge base's documents add
up to. Test conversations (the builder's previews, test chats) are left out of a bot's figures; token usage counts
every call to a model; chunk counts are the knowledge base's vector store's (it owns its chunks).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import sqlalchemy as sa

from privex.clock import now
from privex.extensions import db
from privex.models import (ChatMessage, ChatSession, Chatbot, Chatflow, Document, KnowledgeBase, Lead, MessageFeedback,
                           Organization, TokenUsage)
from privex.models.knowledge import DOCUMENT_STATUSES
from privex.services import components
from privex.services.errors import Invalid


def _owned_by(bot: Chatbot | Chatflow, model=ChatSession):
    """The condition "this row is the bot's": on ``chatflow_id`` for a chatflow, ``chatbot_id`` for a chatbot."""
    return (model.chatflow_id if isinstance(bot, Chatflow) else model.chatbot_id) == bot.id


def chatbot_summary(chatbot: Chatbot | Chatflow) -> dict:
    """Conversations, messages, answers, average latency, tokens, ratings, unanswered questions and leads of a
    chatbot or a chatflow (test conversations left out)."""
    real = sa.select(ChatSession.id).where(_owned_by(chatbot), ChatSession.is_test.is_(False))
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
                _owned_by(chatbot, Lead)))}


def messages_per_day(chatbot: Chatbot | Chatflow, days: int = 30) -> list[dict]:
    """Messages (questions and answers) of the bot's real conversations on each of the last ``days`` days, oldest
    first, today included and days without any given as 0. Days are UTC days, as every stored time is UTC."""
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 366:
        raise Invalid("days must be a whole number from 1 to 366", errors={"days": ["from 1 to 366"]})
    today = now().date()
    first = today - timedelta(days=days - 1)
    day = sa.func.date(sa.func.timezone("UTC", ChatMessage.created_at))
    counted = dict(db.session.execute(
        sa.select(day, sa.func.count()).join(ChatSession, ChatSession.id == ChatMessage.session_id)
        .where(_owned_by(chatbot), ChatSession.is_test.is_(False), ChatMessage.created_at >= datetime_at(first))
        .group_by(day)).all())
    return [{"day": first + timedelta(days=offset), "messages": counted.get(first + timedelta(days=offset), 0)}
            for offset in range(days)]


def datetime_at(day: date):
    """Midnight UTC at the start of ``day``."""
    return datetime.combine(day, time.min, tzinfo=timezone.utc)


def organization_usage(organization: Organization, days: int) -> dict:
    """Token usage of every bot of the organization over the last ``days`` days, largest consumer first."""
    since = now() - timedelta(days=days)
    scope = (TokenUsage.organization_id == organization.id, TokenUsage.created_at >= since)
    count, prompt, completion, estimated = db.session.execute(sa.select(
        sa.func.count(), sa.func.coalesce(sa.func.sum(TokenUsage.prompt_tokens), 0),
        sa.func.coalesce(sa.func.sum(TokenUsage.completion_tokens), 0),
        sa.func.count().filter(TokenUsage.estimated)).where(*scope)).one()
    rows = db.session.execute(sa.select(
        TokenUsage.chatbot_id, TokenUsage.chatflow_id, sa.func.coalesce(Chatbot.name, Chatflow.name),
        sa.func.sum(TokenUsage.prompt_tokens), sa.func.sum(TokenUsage.completion_tokens))
        .outerjoin(Chatbot, Chatbot.id == TokenUsage.chatbot_id)
        .outerjoin(Chatflow, Chatflow.id == TokenUsage.chatflow_id)
        .where(*scope).group_by(TokenUsage.chatbot_id, TokenUsage.chatflow_id, Chatbot.name, Chatflow.name)
        .order_by(sa.func.sum(TokenUsage.prompt_tokens + TokenUsage.completion_tokens).desc(),
                  TokenUsage.chatbot_id, TokenUsage.chatflow_id)).all()
    return {"since": since, "messages": count, "prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion, "estimated_share": round(estimated / count, 3) if count else 0.0,
            "by_chatbot": [{"chatbot_id": str(bot_id) if bot_id else None,
                            **({"chatflow_id": str(flow_id)} if flow_id else {}), "name": name,
                            "prompt_tokens": int(p), "completion_tokens": int(c)}
                           for bot_id, flow_id, name, p, c in rows]}


def organization_tokens_per_day(organization: Organization, days: int) -> list[dict]:
    """Tokens the organization's models used on each of the last ``days`` calendar days (UTC, today included), oldest
    first; a day without use is there with zeros, so a chart of it has no gaps."""
    today = now().date()
    first = today - timedelta(days=days - 1)
    day = sa.func.date(sa.func.timezone("UTC", TokenUsage.created_at))
    rows = db.session.execute(sa.select(
        day, sa.func.sum(TokenUsage.prompt_tokens), sa.func.sum(TokenUsage.completion_tokens))
        .where(TokenUsage.organization_id == organization.id,
               TokenUsage.created_at >= datetime.combine(first, time.min, timezone.utc))
        .group_by(day)).all()
    used = {row[0]: (int(row[1]), int(row[2])) for row in rows}
    per_day = []
    for offset in range(days):
        date = first + timedelta(days=offset)
        prompt, completion = used.get(date, (0, 0))
        per_day.append({"day": date, "prompt_tokens": prompt, "completion_tokens": completion})
    return per_day


def knowledge_base_summary(knowledge_base: KnowledgeBase) -> dict:
    """Documents per status, chunks and stored bytes."""
    statuses = dict(db.session.execute(sa.select(Document.status, sa.func.count()).where(
        Document.knowledge_base_id == knowledge_base.id).group_by(Document.status)).all())
    return {"documents": {status: statuses.get(status, 0) for status in DOCUMENT_STATUSES},
            "chunks": components.vector_store(knowledge_base).summary()["chunks"],
            "size_bytes": db.session.scalar(sa.select(sa.func.coalesce(sa.func.sum(Document.size_bytes), 0))
                                            .where(Document.knowledge_base_id == knowledge_base.id))}


def document_summary(knowledge_base: KnowledgeBase, document: Document) -> dict:
    """A document's status, chunks, their average length and its stored size."""
    summary = components.vector_store(knowledge_base).summary(str(document.id))
    return {"status": document.status, "chunks": summary["chunks"],
            "average_chunk_characters": round(summary["characters"] / summary["chunks"]) if summary["chunks"] else 0,
            "size_bytes": document.size_bytes}
