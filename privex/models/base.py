"""Columns every model shares: a UUID key and created/updated timestamps; the tenant column; and what text the
database cannot store."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.mutable import MutableDict, MutableList
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from privex.extensions import db


def uuid_pk() -> Mapped[uuid.UUID]:
    return mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4, server_default=sa.text("gen_random_uuid()"))


def foreign_key(target: str, *, ondelete: str = "CASCADE", nullable: bool = False, index: bool = True):
    """A UUID foreign key; cascading delete by default, since a tenant's rows go with their parent."""
    return mapped_column(sa.Uuid, sa.ForeignKey(target, ondelete=ondelete), nullable=nullable, index=index)


def jsonb(default=dict, name: str | None = None):
    """A JSONB column that is never NULL: an empty object (or list) by default.

    Top-level changes in place (``bot.config["x"] = 1``, ``flow.nodes.append(...)``) are tracked; changes deeper
    inside need the value reassigned."""
    server_default = "'[]'::jsonb" if default is list else "'{}'::jsonb"
    kind = (MutableList if default is list else MutableDict).as_mutable(JSONB)
    args = (name, kind) if name else (kind,)
    return mapped_column(*args, nullable=False, default=default, server_default=sa.text(server_default))


def choice(column: str, values: tuple[str, ...]) -> sa.CheckConstraint:
    """A CHECK constraint limiting a string column to ``values`` (plain strings keep migrations simple)."""
    quoted = ", ".join(f"'{value}'" for value in values)
    return sa.CheckConstraint(f"{column} IN ({quoted})", name=f"{column}_valid")


def unstorable(value: str) -> str | None:
    """Why PostgreSQL cannot store this text (a NUL, a lone surrogate), or None: every HTML form checks its fields
    with it, so such text is refused beside its field rather than failing in the database."""
    if "\x00" in value:
        return "contains a NUL character, which cannot be stored"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains characters that are not valid Unicode"
    return None


class Model(db.Model):
    __abstract__ = True

    id: Mapped[uuid.UUID] = uuid_pk()
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now(), onupdate=sa.func.now()
    )

    def __repr__(self) -> str:
        label = getattr(self, "name", None) or getattr(self, "email", None) or ""
        return f"<{type(self).__name__} {self.id} {label}>".replace(" >", ">")


class WorkspaceScoped:
    """Mixin for every tenant resource: a ``workspace_id`` that is indexed and cascades on delete.

    API code reads these models only through ``privex.tenancy.scoped``, which filters on this column."""

    @declared_attr
    def workspace_id(cls) -> Mapped[uuid.UUID]:
        return foreign_key("workspaces.id")
