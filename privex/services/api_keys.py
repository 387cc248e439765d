"""API keys of a workspace: created with permissions (``read``, ``write``, ``chat``) and an optional expiry, the
secret shown once and stored only as a hash; revoked at once. Checking a key is ``privex.tenancy.context``."""

from __future__ import annotations

import secrets
from datetime import datetime

import sqlalchemy as sa

from privex.auth.tokens import sha256
from privex.clock import now
from privex.extensions import db
from privex.models import APIKey, User, Workspace
from privex.services.errors import Invalid, NotFound
from privex.services.fields import check_name
from privex.tenancy.permissions import API_KEY_SCOPES


def listed(workspace: Workspace):
    """A ``select()`` of the workspace's keys, oldest first."""
    return sa.select(APIKey).where(APIKey.workspace_id == workspace.id).order_by(APIKey.created_at, APIKey.id)


def create(workspace: Workspace, creator: User, name: str, permissions, expires_at: datetime | None = None
           ) -> tuple[APIKey, str]:
    """A new key and its secret (shown this once, never again). Commits."""
    errors = {}
    check_name({"name": name}, errors)
    permissions = list(permissions or [])
    unknown = sorted({str(p) for p in permissions} - set(API_KEY_SCOPES))
    if not permissions or unknown:
        errors["permissions"] = [f"at least one of {', '.join(sorted(API_KEY_SCOPES))}"]
    if expires_at is not None and (expires_at.tzinfo is None or expires_at <= now()):
        errors["expires_at"] = ["must be in the future"]
    if errors:
        raise Invalid("some API key details are invalid; see `errors`", errors=errors)
    prefix = "pk_" + secrets.token_hex(5)
    key = f"{prefix}.{secrets.token_urlsafe(32)}"
    row = APIKey(workspace_id=workspace.id, name=name, prefix=prefix, key_hash=sha256(key),
                 permissions=sorted(set(permissions)), expires_at=expires_at, created_by_id=creator.id)
    db.session.add(row)
    db.session.commit()
    return row, key


def revoke(workspace: Workspace, key_id) -> None:
    """The key stops working at once (revoking twice is harmless). Commits."""
    row = db.session.get(APIKey, key_id)
    if row is None or row.workspace_id != workspace.id:
        raise NotFound("API key not found.")
    if row.revoked_at is None:
        row.revoked_at = now()
    db.session.commit()
