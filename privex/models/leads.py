"""Leads captured by a bot: who, from which bot and conversation, with the fields the bot asked for."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from privex.models.base import Model, WorkspaceScoped, choice, foreign_key, jsonb

LEAD_STATUSES = ("new", "contacted", "qualified", "converted", "lost")


class Lead(WorkspaceScoped, Model):
    __tablename__ = "leads"
    __table_args__ = (
        choice("status", LEAD_STATUSES),
        sa.Index(None, "workspace_id", "email"),
        sa.Index(None, "workspace_id", "created_at"),
    )

    # A lead outlives the bot or conversation it came from.
    chatbot_id: Mapped[uuid.UUID | None] = foreign_key("chatbots.id", ondelete="SET NULL", nullable=True)
    chatflow_id: Mapped[uuid.UUID | None] = foreign_key("chatflows.id", ondelete="SET NULL", nullable=True)
    session_id: Mapped[uuid.UUID | None] = foreign_key("chat_sessions.id", ondelete="SET NULL", nullable=True)
    email: Mapped[str | None] = mapped_column(sa.String(255))
    name: Mapped[str | None] = mapped_column(sa.String(255))
    phone: Mapped[str | None] = mapped_column(sa.String(64))
    custom_fields: Mapped[dict] = jsonb()
    consent: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False, server_default=sa.false())
    consent_text: Mapped[str | None] = mapped_column(sa.Text)
    channel: Mapped[str | None] = mapped_column(sa.String(32))
    status: Mapped[str] = mapped_column(sa.String(16), nullable=False, default="new", server_default="new")
    ip_address: Mapped[str | None] = mapped_column(sa.String(64))
    user_agent: Mapped[str | None] = mapped_column(sa.Text)
    country: Mapped[str | None] = mapped_column(sa.String(64))
    city: Mapped[str | None] = mapped_column(sa.String(128))
