"""Signing up: a new user, with an email or wallet identity, their personal organization and its default workspace."""

from __future__ import annotations

from privex.auth.passwords import hash_password
from privex.extensions import db
from privex.models import AuthIdentity, User
from privex.services import accounts
from privex.services.organizations import create_organization


def sign_up(email: str, password: str, display_name: str | None = None) -> User:
    """A new user with an email identity, a personal organization and its default workspace."""
    email = accounts.normalize_email(email)
    accounts.check_password_strength(password)
    if accounts.find_email_identity(email) is not None:
        raise accounts.AccountExists("an account with this email already exists; sign in instead")
    user = User(username=accounts.unique_username(email), display_name=display_name)
    user.identities.append(AuthIdentity(provider="email", provider_id=email, password_hash=hash_password(password)))
    db.session.add(user)
    db.session.flush()
    create_organization(user, organization_name(display_name or email.split("@")[0]), personal=True)
    return user


def sign_up_with_wallet(provider: str, address: str, credentials: dict) -> User:
    user = User(username=accounts.unique_username(f"{provider}-{address[-8:]}"))
    user.identities.append(AuthIdentity(provider=provider, provider_id=address, credentials=credentials))
    db.session.add(user)
    db.session.flush()
    create_organization(user, organization_name(f"{provider.upper()} {address[:6]}…{address[-4:]}"), personal=True)
    return user


def organization_name(owner: str) -> str:
    """The name of someone's personal organization, within the 120 characters a name may have."""
    suffix = "'s organization"
    return owner[:120 - len(suffix)] + suffix
