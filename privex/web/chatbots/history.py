"""A bot's conversations (real ones; the builder's test chats on request), one conversation with its messages,
citations and feedback, and the analytics card above them: messages per day over the last 30 days and
satisfaction (thumbs up and down), from ``services.analytics``.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from flask import render_template, request
from sqlalchemy import orm

from privex.extensions import db
from privex.models import ChatMessage, ChatSession, Chatbot
from privex.services import analytics
from privex.services.errors import NotFound
from privex.web.chatbots import bp
from privex.web.shell import paginate, resource_or_404

PER_PAGE = 20
CHART_DAYS = 30


@bp.get("/<chatbot_id>/conversations")
def conversations(chatbot_id):
    chatbot = resource_or_404(Chatbot, chatbot_id)
    with_tests = request.args.get("tests") == "1"
    statement = sa.select(ChatSession).where(ChatSession.chatbot_id == chatbot.id)
    if not with_tests:
        statement = statement.where(ChatSession.is_test.is_(False))
    statement = statement.order_by(sa.func.coalesce(ChatSession.last_message_at, ChatSession.created_at).desc(),
                                   ChatSession.id)
    page = paginate(statement, PER_PAGE)
    counts = dict(db.session.execute(sa.select(ChatMessage.session_id, sa.func.count()).where(
        ChatMessage.session_id.in_([session.id for session in page.items])).group_by(ChatMessage.session_id)).all())
    return render_template("chatbots/conversations.html", chatbot=chatbot, page=page, counts=counts,
                           with_tests=with_tests, card=analytics_card(chatbot))


def analytics_card(chatbot: Chatbot) -> dict:
    summary = analytics.chatbot_summary(chatbot)
    days = analytics.messages_per_day(chatbot, CHART_DAYS)
    rated = summary["thumbs_up"] + summary["thumbs_down"]
    return {"summary": summary, "days": days, "busiest": max(day["messages"] for day in days),
            "total": sum(day["messages"] for day in days),
            "satisfaction": round(100 * summary["thumbs_up"] / rated) if rated else None, "rated": rated}


@bp.get("/<chatbot_id>/conversations/<session_id>")
def conversation(chatbot_id, session_id):
    chatbot = resource_or_404(Chatbot, chatbot_id)
    try:
        session_id = uuid.UUID(session_id)
    except ValueError:
        raise NotFound("Conversation not found.") from None
    session = db.session.scalar(sa.select(ChatSession).where(
        ChatSession.id == session_id, ChatSession.chatbot_id == chatbot.id).options(
        orm.selectinload(ChatSession.messages).joinedload(ChatMessage.feedback)))
    if session is None:
        raise NotFound("Conversation not found.")
    return render_template("chatbots/conversation.html", chatbot=chatbot, session=session)
