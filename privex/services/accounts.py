"""Accounts: users and their email identities, the password rule every sign-up and change obeys, and checking a
password. Signing up (a user with their personal organization) is ``privex.services.registration``."""

from __future__ import annotations

import re
from typing import Callable

import sqlalchemy as sa

from privex.auth.passwords import hash_password, needs_rehash, verify_password
from privex.auth.tokens import revoke_other_sessions
from privex.extensions import db
from privex.models import AuthIdentity, User
from privex.services.errors import Conflict, Invalid, NotAuthenticated

PASSWORD_RULE = "at least 8 characters, with an upper-case letter, a lower-case letter, a digit and a symbol"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class PasswordTooWeak(Invalid):
    """The password breaks PASSWORD_RULE; ``errors`` names the field it was given in."""


def check_password_strength(password: str, field: str = "password") -> None:
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
        message = f"password needs {PASSWORD_RULE}; missing: {', '.join(missing)}"
        raise PasswordTooWeak(message, errors={field: [message]})


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


class AccountExists(Conflict):
    """An account with this email exists already."""


def change_password(user: User, current: str, new: str, *, keep_session=None) -> int:
    """Set a new password after checking the current one; every other session of the user is signed out (their
    tokens and cookies stop working). Returns how many were; commits."""
    identity = next((i for i in user.identities if i.provider == "email"), None)
    if identity is None:
        raise Conflict("this account signs in with a wallet and has no password")
    if not verify_password(identity.password_hash, current):
        raise NotAuthenticated("the current password is wrong", errors={"current_password": ["wrong password"]})
    check_password_strength(new, field="new_password")
    identity.password_hash = hash_password(new)
    revoked = revoke_other_sessions(user.id, keep=keep_session, reason="password-changed")
    db.session.commit()
    return revoked


def update_user(user: User, changes: dict) -> User:
    """Change a user's username, display name or whether they may sign in; deactivating signs them out everywhere
    (their tokens stop working; the session loader refuses inactive users). Commits."""
    errors = {}
    if "username" in changes and (not isinstance(changes["username"], str)
                                  or not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", changes["username"])):
        errors["username"] = ["1 to 64 letters, digits, dots, dashes or underscores"]
    if changes.get("display_name") is not None and (not isinstance(changes["display_name"], str)
                                                    or len(changes["display_name"]) > 120):
        errors["display_name"] = ["at most 120 characters"]
    if "is_active" in changes and not isinstance(changes["is_active"], bool):
        errors["is_active"] = ["true or false"]
    if errors:
        raise Invalid("some account details are invalid; see `errors`", errors=errors)
    if "username" in changes and changes["username"] != user.username and db.session.scalar(
            sa.select(User.id).where(User.username == changes["username"])):
        raise Conflict(f"the username {changes['username']!r} is taken", errors={"username": ["already taken"]})
    for key in ("username", "display_name", "is_active"):
        if key in changes:
            setattr(user, key, changes[key])
    if changes.get("is_active") is False:
        revoke_other_sessions(user.id, keep=None, reason="deactivated")
    db.session.commit()
    return user
