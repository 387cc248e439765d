"""Third-party credentials, encrypted at rest, and the audit log of every decrypting read or change."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from privex.models.base import Model, WorkspaceScoped, choice, foreign_key, jsonb

CREDENTIAL_TYPES = ("api_key", "oauth2", "basic", "token", "custom")
AUDIT_ACTIONS = ("create", "read", "use", "update", "rotate", "delete", "test")


class Credential(WorkspaceScoped, Model):
    __tablename__ = "credentials"
    __table_args__ = (sa.UniqueConstraint("workspace_id", "name"), choice("credential_type", CREDENTIAL_TYPES))

    name: Mapped[str] = mapped_column(sa.String(120), nullable=False)
    provider: Mapped[str] = mapped_column(sa.String(64), nullable=False, index=True)
    credential_type: Mapped[str] = mapped_column(sa.String(16), nullable=False, default="api_key")
    # Fernet token of the JSON secret. Never returned by the API or shown in the back office.
    encrypted_data: Mapped[bytes] = mapped_column(sa.LargeBinary, nullable=False)
    metadata_: Mapped[dict] = jsonb(name="metadata")  # non-secret: scopes, account name, expiry shown to the user
    created_by_id: Mapped[uuid.UUID | None] = foreign_key("users.id", ondelete="SET NULL", nullable=True,
                                                          index=False)
    last_used_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))

    audit_log: Mapped[list["CredentialAuditLog"]] = relationship(
        back_populates="credential", cascade="all, delete-orphan", passive_deletes=True
    )


class CredentialAuditLog(WorkspaceScoped, Model):
    __tablename__ = "credential_audit_log"
    __table_args__ = (choice("action", AUDIT_ACTIONS), sa.Index(None, "credential_id", "created_at"))

    credential_id: Mapped[uuid.UUID] = foreign_key("credentials.id", index=False)
    user_id: Mapped[uuid.UUID | None] = foreign_key("users.id", ondelete="SET NULL", nullable=True)
    action: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    ip_address: Mapped[str | None] = mapped_column(sa.String(64))
    detail: Mapped[dict] = jsonb()

    credential: Mapped[Credential] = relationship(back_populates="audit_log")
