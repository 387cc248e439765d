"""Accounts: creating users with an email identity, and the password rule every sign-up and change obeys."""

from __future__ import annotations

import re
from typing import Callable

import sqlalchemy as sa

from privex.auth.passwords import hash_password, needs_rehash, verify_password
from privex.extensions import db
from privex.models import AuthIdentity, User

PASSWORD_RULE = "at least 8 characters, with an upper-case letter, a lower-case letter, a digit and a symbol"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class PasswordTooWeak(ValueError):
    pass


def check_password_strength(password: str) -> None:
    missing = [
        label for label, ok in (
            ("8 characters", len(password) >= 8),
            ("an upper-case letter", re.search(r"[A-Z]", password)),
            ("a lower-case letter", re.search(r"[a-z]", password)),
            ("a digit", re.search(r"\d", password)),
            ("a symbol", re.search(r"[^A-Za-z0-9]", password)),
        ) if not ok
    ]
    if missing:
        raise PasswordTooWeak(f"password needs {PASSWORD_RULE}; missing: {', '.join(missing)}")


def normalize_email(email: str) -> str:
    email = email.strip().lower()
    if not _EMAIL.match(email):
        raise ValueError(f"{email!r} is not an email address")
    return email


def find_email_identity(email: str) -> AuthIdentity | None:
    return db.session.scalar(
        sa.select(AuthIdentity).where(AuthIdentity.provider == "email", AuthIdentity.provider_id == email)
    )


def unique_username(seed: str) -> str:
    base = re.sub(r"[^a-z0-9_.-]", "", seed.split("@")[0].lower())[:48] or "user"
    candidate, n = base, 1
    while db.session.scalar(sa.select(User.id).where(User.username == candidate)):
        n += 1
        candidate = f"{base}{n}"
    return candidate


def create_superuser(email: str, password: str | None,
                     ask_password: Callable[[], str]) -> tuple[User, bool]:
    """Make ``email`` a superuser; create the user (asking for a password if none) when it does not exist.
    Returns the user and whether it was created."""
    email = normalize_email(email)
    identity = find_email_identity(email)
    if identity is not None:
        identity.user.is_superuser = True
        db.session.commit()
        return identity.user, False
    password = password or ask_password()
    check_password_strength(password)
    user = User(username=unique_username(email), is_superuser=True)
    user.identities.append(AuthIdentity(provider="email", provider_id=email, password_hash=hash_password(password)))
    db.session.add(user)
    db.session.commit()
    return user, True


def sign_up(email: str, password: str, display_name: str | None = None) -> User:
    """A new user with an email identity, a personal organization and its default workspace."""
    from privex.services.organizations import create_organization

    email = normalize_email(email)
    check_password_strength(password)
    if find_email_identity(email) is not None:
        raise AccountExists("an account with this email already exists; sign in instead")
    user = User(username=unique_username(email), display_name=display_name)
    user.identities.append(AuthIdentity(provider="email", provider_id=email, password_hash=hash_password(password)))
    db.session.add(user)
    db.session.flush()
    create_organization(user, organization_name(display_name or email.split("@")[0]), personal=True)
    return user


def sign_up_with_wallet(provider: str, address: str, credentials: dict) -> User:
    from privex.services.organizations import create_organization

    user = User(username=unique_username(f"{provider}-{address[-8:]}"))
    user.identities.append(AuthIdentity(provider=provider, provider_id=address, credentials=credentials))
    db.session.add(user)
    db.session.flush()
    create_organization(user, organization_name(f"{provider.upper()} {address[:6]}…{address[-4:]}"), personal=True)
    return user


def organization_name(owner: str) -> str:
    """The name of someone's personal organization, within the 120 characters a name may have."""
    suffix = "'s organization"
    return owner[:120 - len(suffix)] + suffix


def check_email_password(email: str, password: str) -> User | None:
    """The user when the email and password match an active account, else None (same time either way)."""
    try:
        identity = find_email_identity(normalize_email(email))
    except ValueError:
        identity = None
    if not verify_password(identity.password_hash if identity else None, password):
        return None
    if not identity.user.is_active:
        return None
    if needs_rehash(identity.password_hash):
        identity.password_hash = hash_password(password)
    return identity.user


class AccountExists(ValueError):
    pass
