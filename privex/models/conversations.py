"""Conversations: ChatSession -> ChatMessage, feedback on a message, and token usage for billing and limits."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from privex.models.base import Model, WorkspaceScoped, choice, foreign_key, jsonb

MESSAGE_ROLES = ("user", "assistant", "system")


class ChatSession(WorkspaceScoped, Model):
    """A conversation. Deleting its bot deletes it with its messages; leads and token usage outlive it."""

    __tablename__ = "chat_sessions"
    __table_args__ = (
        sa.CheckConstraint("num_nonnulls(chatbot_id, chatflow_id) <= 1", name="one_bot"),
        sa.Index(None, "workspace_id", "created_at"),
    )

    chatbot_id: Mapped[uuid.UUID | None] = foreign_key("chatbots.id", nullable=True)
    chatflow_id: Mapped[uuid.UUID | None] = foreign_key("chatflows.id", nullable=True)
    channel: Mapped[str] = mapped_column(sa.String(32), nullable=False, default="api")
    external_user_id: Mapped[str | None] = mapped_column(sa.String(255))
    user_metadata: Mapped[dict] = jsonb()
    # Preview sessions from the builder: kept for the conversation, left out of analytics.
    is_test: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False, server_default=sa.false())
    last_message_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))

    messages: Mapped[list["ChatMessage"]] = relationship(
        back_populates="session", cascade="all, delete-orphan", passive_deletes=True,
        order_by="ChatMessage.created_at"
    )


class ChatMessage(WorkspaceScoped, Model):
    __tablename__ = "chat_messages"
    __table_args__ = (choice("role", MESSAGE_ROLES), sa.Index(None, "session_id", "created_at"))

    session_id: Mapped[uuid.UUID] = foreign_key("chat_sessions.id", index=False)
    role: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    content: Mapped[str] = mapped_column(sa.Text, nullable=False)
    citations: Mapped[list] = jsonb(list)
    metadata_: Mapped[dict] = jsonb(name="metadata")
    model: Mapped[str | None] = mapped_column(sa.String(128))
    latency_ms: Mapped[int | None] = mapped_column(sa.Integer)
    prompt_tokens: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0, server_default="0")
    completion_tokens: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0, server_default="0")

    session: Mapped[ChatSession] = relationship(back_populates="messages")
    feedback: Mapped["MessageFeedback | None"] = relationship(
        back_populates="message", cascade="all, delete-orphan", passive_deletes=True
    )


class MessageFeedback(WorkspaceScoped, Model):
    """Thumbs up (+1) or down (-1) on an assistant message; one per message, the latest vote wins."""

    __tablename__ = "message_feedback"
    __table_args__ = (sa.CheckConstraint("rating IN (-1, 1)", name="rating_valid"),)

    message_id: Mapped[uuid.UUID] = mapped_column(
        sa.Uuid, sa.ForeignKey("chat_messages.id", ondelete="CASCADE"), nullable=False, unique=True
    )
    rating: Mapped[int] = mapped_column(sa.SmallInteger, nullable=False)
    comment: Mapped[str | None] = mapped_column(sa.Text)

    message: Mapped[ChatMessage] = relationship(back_populates="feedback")


class TokenUsage(WorkspaceScoped, Model):
    """Tokens spent by one LLM call, summed per organization for usage reports and limits."""

    __tablename__ = "token_usage"
    __table_args__ = (sa.Index(None, "organization_id", "created_at"),)

    organization_id: Mapped[uuid.UUID] = foreign_key("organizations.id", index=False)
    chatbot_id: Mapped[uuid.UUID | None] = foreign_key("chatbots.id", ondelete="SET NULL", nullable=True)
    chatflow_id: Mapped[uuid.UUID | None] = foreign_key("chatflows.id", ondelete="SET NULL", nullable=True,
                                                        index=False)
    # Deferred: deleting a chatbot nulls this row twice (chatbot_id directly, message_id through the cascade
    # chatbot -> sessions -> messages); checked at commit, when both actions are done.
    message_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.Uuid, sa.ForeignKey("chat_messages.id", ondelete="SET NULL", deferrable=True, initially="DEFERRED")
    )
    provider: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    model: Mapped[str | None] = mapped_column(sa.String(128))
    prompt_tokens: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0, server_default="0")
    completion_tokens: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0, server_default="0")
    estimated: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False, server_default=sa.false())
