"""Who a person is (User) and how they prove it (AuthIdentity: email + password, or a wallet address)."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from privex.models.base import Model, choice, foreign_key, jsonb

AUTH_PROVIDERS = ("email", "evm", "solana", "cosmos")


class User(Model):
    __tablename__ = "users"

    username: Mapped[str] = mapped_column(sa.String(64), nullable=False, unique=True)
    display_name: Mapped[str | None] = mapped_column(sa.String(120))
    is_active: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=True, server_default=sa.true())
    # Platform operator: may open /admin. Never granted through the API; only by `privex create-admin`.
    is_superuser: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False,
                                               server_default=sa.false())
    last_login_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))

    identities: Mapped[list["AuthIdentity"]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def email(self) -> str | None:
        for identity in self.identities:
            if identity.provider == "email":
                return identity.provider_id
        return None

    # Flask-Login protocol
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        """What Flask-Login keeps in the session cookie: the id and a stamp of the password hash, so changing the
        password signs every other browser out (``privex.auth.sessions.load_user`` compares the stamp)."""
        return f"{self.id}.{self.password_stamp}"

    @property
    def password_stamp(self) -> str:
        """Changes whenever the password does; "-" for an account without a password (wallets only)."""
        for identity in self.identities:
            if identity.provider == "email" and identity.password_hash:
                return hashlib.sha256(identity.password_hash.encode()).hexdigest()[:16]
        return "-"


class AuthIdentity(Model):
    """One way a user signs in. ``provider_id`` is the lower-cased email, or the wallet address in the canonical
    form of its chain (EIP-55 checksum, base58, bech32). ``credentials`` holds non-secret details (chain id, public
    key, bech32 prefix); the only secret, the password hash, has its own column so it is easy to keep out of views.
    """

    __tablename__ = "auth_identities"
    __table_args__ = (
        sa.UniqueConstraint("provider", "provider_id"),
        choice("provider", AUTH_PROVIDERS),
    )

    user_id: Mapped[uuid.UUID] = foreign_key("users.id")
    provider: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    provider_id: Mapped[str] = mapped_column(sa.String(255), nullable=False)
    password_hash: Mapped[str | None] = mapped_column(sa.String(255))
    credentials: Mapped[dict] = jsonb()
    last_used_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))

    user: Mapped[User] = relationship(back_populates="identities")


class AuthSession(Model):
    """One signed-in device: the tenant context its access tokens carry, and the family of its refresh tokens.

    Signing out, changing the password elsewhere or reusing a rotated refresh token revokes the whole session."""

    __tablename__ = "auth_sessions"

    user_id: Mapped[uuid.UUID] = foreign_key("users.id")
    organization_id: Mapped[uuid.UUID | None] = foreign_key("organizations.id", ondelete="SET NULL", nullable=True,
                                                            index=False)
    workspace_id: Mapped[uuid.UUID | None] = foreign_key("workspaces.id", ondelete="SET NULL", nullable=True,
                                                         index=False)
    provider: Mapped[str] = mapped_column(sa.String(16), nullable=False)  # how it signed in
    ip_address: Mapped[str | None] = mapped_column(sa.String(64))
    user_agent: Mapped[str | None] = mapped_column(sa.String(512))
    last_used_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    revoked_reason: Mapped[str | None] = mapped_column(sa.String(64))


class RefreshToken(Model):
    """A single-use refresh token (only its SHA-256 is stored). Using it marks it used and issues the next one."""

    __tablename__ = "refresh_tokens"

    session_id: Mapped[uuid.UUID] = foreign_key("auth_sessions.id")
    token_hash: Mapped[str] = mapped_column(sa.String(64), nullable=False, unique=True)
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
