"""Tenants: Organization -> Workspace, their members with roles, and pending invitations."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from privex.models.base import Model, choice, foreign_key, jsonb

ORGANIZATION_ROLES = ("owner", "admin", "member")
WORKSPACE_ROLES = ("admin", "editor", "viewer")
SUBSCRIPTION_TIERS = ("free", "pro", "enterprise")


class Organization(Model):
    __tablename__ = "organizations"
    __table_args__ = (choice("subscription_tier", SUBSCRIPTION_TIERS),)

    name: Mapped[str] = mapped_column(sa.String(120), nullable=False)
    billing_email: Mapped[str | None] = mapped_column(sa.String(255))
    subscription_tier: Mapped[str] = mapped_column(sa.String(16), nullable=False, default="free",
                                                   server_default="free")
    is_personal: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False, server_default=sa.false())
    settings: Mapped[dict] = jsonb()
    created_by_id: Mapped[uuid.UUID | None] = foreign_key("users.id", ondelete="SET NULL", nullable=True)

    members: Mapped[list["OrganizationMember"]] = relationship(
        back_populates="organization", cascade="all, delete-orphan", passive_deletes=True
    )
    workspaces: Mapped[list["Workspace"]] = relationship(
        back_populates="organization", cascade="all, delete-orphan", passive_deletes=True
    )


class OrganizationMember(Model):
    __tablename__ = "organization_members"
    __table_args__ = (sa.UniqueConstraint("organization_id", "user_id"), choice("role", ORGANIZATION_ROLES))

    organization_id: Mapped[uuid.UUID] = foreign_key("organizations.id")
    user_id: Mapped[uuid.UUID] = foreign_key("users.id")
    role: Mapped[str] = mapped_column(sa.String(16), nullable=False, default="member")
    invited_by_id: Mapped[uuid.UUID | None] = foreign_key("users.id", ondelete="SET NULL", nullable=True,
                                                          index=False)

    organization: Mapped[Organization] = relationship(back_populates="members")
    user = relationship("User", foreign_keys=[user_id])


class Workspace(Model):
    __tablename__ = "workspaces"
    __table_args__ = (sa.UniqueConstraint("organization_id", "name"),)

    organization_id: Mapped[uuid.UUID] = foreign_key("organizations.id")
    name: Mapped[str] = mapped_column(sa.String(120), nullable=False)
    description: Mapped[str | None] = mapped_column(sa.Text)
    is_default: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False, server_default=sa.false())
    settings: Mapped[dict] = jsonb()
    created_by_id: Mapped[uuid.UUID | None] = foreign_key("users.id", ondelete="SET NULL", nullable=True)
    # The member answerable for the workspace; `POST /workspaces/{id}/transfer` hands it to another member.
    owner_id: Mapped[uuid.UUID | None] = foreign_key("users.id", ondelete="SET NULL", nullable=True)

    organization: Mapped[Organization] = relationship(back_populates="workspaces")
    members: Mapped[list["WorkspaceMember"]] = relationship(
        back_populates="workspace", cascade="all, delete-orphan", passive_deletes=True
    )


class WorkspaceMember(Model):
    __tablename__ = "workspace_members"
    __table_args__ = (sa.UniqueConstraint("workspace_id", "user_id"), choice("role", WORKSPACE_ROLES))

    workspace_id: Mapped[uuid.UUID] = foreign_key("workspaces.id")
    user_id: Mapped[uuid.UUID] = foreign_key("users.id")
    role: Mapped[str] = mapped_column(sa.String(16), nullable=False, default="viewer")

    workspace: Mapped[Workspace] = relationship(back_populates="members")
    user = relationship("User", foreign_keys=[user_id])


class Invitation(Model):
    """A pending invitation to an organization (and optionally straight into one workspace).

    Only a hash of the token is stored; the token itself goes to the invitee once."""

    __tablename__ = "invitations"
    __table_args__ = (
        choice("role", ORGANIZATION_ROLES),
        sa.CheckConstraint(
            "workspace_role IS NULL OR workspace_role IN ('admin', 'editor', 'viewer')", name="workspace_role_valid"
        ),
    )

    organization_id: Mapped[uuid.UUID] = foreign_key("organizations.id")
    workspace_id: Mapped[uuid.UUID | None] = foreign_key("workspaces.id", nullable=True)
    email: Mapped[str] = mapped_column(sa.String(255), nullable=False, index=True)
    role: Mapped[str] = mapped_column(sa.String(16), nullable=False, default="member")
    workspace_role: Mapped[str | None] = mapped_column(sa.String(16))
    token_hash: Mapped[str] = mapped_column(sa.String(128), nullable=False, unique=True)
    invited_by_id: Mapped[uuid.UUID | None] = foreign_key("users.id", ondelete="SET NULL", nullable=True,
                                                          index=False)
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)
    accepted_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))

    organization: Mapped[Organization] = relationship()
