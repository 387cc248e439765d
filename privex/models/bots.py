"""What users build: form-configured Chatbots and graph-based Chatflows, and the chatbot <-> knowledge base link."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from privex.extensions import db
from privex.models.base import Model, WorkspaceScoped, choice, foreign_key, jsonb

BOT_STATUSES = ("draft", "active", "paused", "archived")


def new_public_id() -> str:
    """The id a widget or public API client uses; unguessable, unlike nothing else about a bot."""
    return "bot_" + secrets.token_urlsafe(12)


chatbot_knowledge_bases = sa.Table(
    "chatbot_knowledge_bases",
    db.metadata,
    sa.Column("chatbot_id", sa.Uuid, sa.ForeignKey("chatbots.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("knowledge_base_id", sa.Uuid, sa.ForeignKey("knowledge_bases.id", ondelete="CASCADE"),
              primary_key=True, index=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)


class Chatbot(WorkspaceScoped, Model):
    """A chatbot configured through a form. ``config`` (JSONB) holds the system prompt, provider and model
    parameters, messages, retrieval settings, lead capture, appearance and allowed origins."""

    __tablename__ = "chatbots"
    __table_args__ = (choice("status", BOT_STATUSES),)

    name: Mapped[str] = mapped_column(sa.String(120), nullable=False)
    description: Mapped[str | None] = mapped_column(sa.Text)
    public_id: Mapped[str] = mapped_column(sa.String(32), nullable=False, unique=True, default=new_public_id)
    status: Mapped[str] = mapped_column(sa.String(16), nullable=False, default="active", server_default="active")
    config: Mapped[dict] = jsonb()
    created_by_id: Mapped[uuid.UUID | None] = foreign_key("users.id", ondelete="SET NULL", nullable=True,
                                                          index=False)
    deployed_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))

    knowledge_bases = relationship("KnowledgeBase", secondary=chatbot_knowledge_bases, back_populates="chatbots",
                                   passive_deletes=True)


class Chatflow(WorkspaceScoped, Model):
    """A chatbot built as a graph of nodes and edges (JSONB), run by the chatflow engine.

    ``nodes`` / ``edges`` are the working copy the builder edits; what visitors talk to is the published
    ``ChatflowVersion`` whose number is ``version`` (0: never published). Saving the working copy never changes what a
    deployed flow runs; publishing adds a version, rolling back points ``version`` at an older one. ``config`` holds
    the same deployment settings as a chatbot's (welcome message, appearance, allowed origins, rate limit, lead
    capture, the default LLM provider of its llm nodes)."""

    __tablename__ = "chatflows"
    __table_args__ = (choice("status", BOT_STATUSES),)

    name: Mapped[str] = mapped_column(sa.String(120), nullable=False)
    description: Mapped[str | None] = mapped_column(sa.Text)
    public_id: Mapped[str] = mapped_column(sa.String(32), nullable=False, unique=True, default=new_public_id)
    status: Mapped[str] = mapped_column(sa.String(16), nullable=False, default="draft", server_default="draft")
    nodes: Mapped[list] = jsonb(list)
    edges: Mapped[list] = jsonb(list)
    variables: Mapped[dict] = jsonb()
    config: Mapped[dict] = jsonb()
    version: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0, server_default="0")
    created_by_id: Mapped[uuid.UUID | None] = foreign_key("users.id", ondelete="SET NULL", nullable=True,
                                                          index=False)
    deployed_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))

    versions = relationship("ChatflowVersion", back_populates="chatflow", cascade="all, delete-orphan",
                            passive_deletes=True, order_by="ChatflowVersion.number.desc()")


class ChatflowVersion(WorkspaceScoped, Model):
    """A published graph of a chatflow: never changed after it is written."""

    __tablename__ = "chatflow_versions"
    __table_args__ = (sa.UniqueConstraint("chatflow_id", "number"),)

    chatflow_id: Mapped[uuid.UUID] = foreign_key("chatflows.id", index=False)
    number: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    nodes: Mapped[list] = jsonb(list)
    edges: Mapped[list] = jsonb(list)
    note: Mapped[str | None] = mapped_column(sa.Text)
    created_by_id: Mapped[uuid.UUID | None] = foreign_key("users.id", ondelete="SET NULL", nullable=True,
                                                          index=False)

    chatflow = relationship(Chatflow, back_populates="versions")
