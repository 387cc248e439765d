"""Who a person is (User) and how they prove it (AuthIdentity: email + password, or a wallet address)."""

from __future__ import annotations

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
        return str(self.id)


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
