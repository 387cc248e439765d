"""Workspace API keys: shown once, stored as a hash, found by their public prefix."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from privex.models.base import Model, WorkspaceScoped, foreign_key, jsonb


class APIKey(WorkspaceScoped, Model):
    __tablename__ = "api_keys"

    name: Mapped[str] = mapped_column(sa.String(120), nullable=False)
    prefix: Mapped[str] = mapped_column(sa.String(16), nullable=False, unique=True)
    key_hash: Mapped[str] = mapped_column(sa.String(128), nullable=False)
    permissions: Mapped[list] = jsonb(list)
    created_by_id: Mapped[uuid.UUID | None] = foreign_key("users.id", ondelete="SET NULL", nullable=True,
                                                          index=False)
    last_used_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
