"""Access tokens (short-lived JWTs) and sign-in sessions with rotating, single-use refresh tokens.

An access token carries the user, the session (``sid``), and the tenant context (organization, workspace and the
roles held there when it was issued). Roles are re-read from the database on every request, so a token never
grants more than the caller holds now. A revoked session is written to Redis for one access-token lifetime, so
its access tokens stop working at once without a database read per request.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

import jwt
import sqlalchemy as sa
from flask import current_app, request

from privex.clock import now
from privex.extensions import db, get_redis
from privex.models import AuthSession, RefreshToken

ALGORITHM = "HS256"
REVOKED_PREFIX = "privex:revoked-session:"


class TokenError(Exception):
    """Why a token was refused; the message is safe to show to the caller."""


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    session_id: uuid.UUID
    organization_id: uuid.UUID | None
    workspace_id: uuid.UUID | None


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _access_lifetime() -> timedelta:
    return timedelta(minutes=current_app.config["ACCESS_TOKEN_MINUTES"])


def issue_access_token(session: AuthSession, org_role: str | None, workspace_role: str | None) -> str:
    issued = now()
    claims = {
        "sub": str(session.user_id),
        "sid": str(session.id),
        "org": str(session.organization_id) if session.organization_id else None,
        "ws": str(session.workspace_id) if session.workspace_id else None,
        "org_role": org_role,
        "ws_role": workspace_role,
        "typ": "access",
        "iat": issued,
        "exp": issued + _access_lifetime(),
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(claims, current_app.config["SECRET_KEY"], algorithm=ALGORITHM)


def decode_access_token(token: str) -> AccessClaims:
    try:
        claims = jwt.decode(token, current_app.config["SECRET_KEY"], algorithms=[ALGORITHM],
                            options={"require": ["exp", "iat", "sub", "sid", "typ"]})
    except jwt.ExpiredSignatureError:
        raise TokenError("the access token has expired; refresh it or sign in again") from None
    except jwt.PyJWTError:
        raise TokenError("the access token is invalid") from None
    if claims.get("typ") != "access":
        raise TokenError("the access token is invalid")
    try:
        parsed = AccessClaims(
            user_id=uuid.UUID(claims["sub"]),
            session_id=uuid.UUID(claims["sid"]),
            organization_id=uuid.UUID(claims["org"]) if claims.get("org") else None,
            workspace_id=uuid.UUID(claims["ws"]) if claims.get("ws") else None,
        )
    except (ValueError, TypeError, AttributeError):
        raise TokenError("the access token is invalid") from None
    if get_redis().exists(REVOKED_PREFIX + str(parsed.session_id)):
        raise TokenError("this session has been signed out; sign in again")
    return parsed


def start_session(user_id: uuid.UUID, provider: str, organization_id, workspace_id) -> AuthSession:
    session = AuthSession(user_id=user_id, provider=provider, organization_id=organization_id,
                          workspace_id=workspace_id, ip_address=request.remote_addr,
                          user_agent=(request.user_agent.string or None) and request.user_agent.string[:512],
                          last_used_at=now())
    db.session.add(session)
    db.session.flush()
    return session


def issue_refresh_token(session: AuthSession) -> str:
    token = "rt_" + secrets.token_urlsafe(32)
    db.session.add(RefreshToken(session_id=session.id, token_hash=sha256(token),
                                expires_at=now() + timedelta(days=current_app.config["REFRESH_TOKEN_DAYS"])))
    return token


def rotate_refresh_token(token: str) -> tuple[AuthSession, str]:
    """Spend ``token`` and return its session with the next refresh token.

    Presenting a token that was already spent means it was stolen or replayed: the whole session is revoked."""
    row = db.session.scalar(sa.select(RefreshToken).where(RefreshToken.token_hash == sha256(token))
                            .with_for_update())
    if row is None:
        raise TokenError("the refresh token is invalid")
    session = db.session.get(AuthSession, row.session_id)
    if session.revoked_at is not None:
        raise TokenError("this session has been signed out; sign in again")
    if row.used_at is not None:
        revoke_sessions([session], reason="refresh-token-reuse")
        db.session.commit()
        raise TokenError("this refresh token was already used; the session is revoked for safety, sign in again")
    if row.expires_at <= now():
        raise TokenError("the refresh token has expired; sign in again")
    row.used_at = now()
    session.last_used_at = now()
    return session, issue_refresh_token(session)


def revoke_sessions(sessions, reason: str) -> None:
    redis = get_redis()
    ttl = int(_access_lifetime().total_seconds()) + 60
    for session in sessions:
        if session.revoked_at is None:
            session.revoked_at = now()
            session.revoked_reason = reason
        redis.set(REVOKED_PREFIX + str(session.id), reason, ex=ttl)


def revoke_other_sessions(user_id: uuid.UUID, keep: uuid.UUID | None, reason: str) -> int:
    sessions = db.session.scalars(
        sa.select(AuthSession).where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None),
                                     AuthSession.id != keep if keep else sa.true())
    ).all()
    revoke_sessions(sessions, reason)
    return len(sessions)
