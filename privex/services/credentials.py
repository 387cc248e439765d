"""Third-party credentials (a Notion integration token, a Google access token, an API key): encrypted at rest with
Fernet, never returned by the API, and every decrypting use written to the credential's audit log.

The encryption keys come from ``PRIVEX_CREDENTIALS_KEYS`` (Fernet keys, newest first; older ones still decrypt, so a
key can be rotated without losing credentials). Unset, one key is derived from the app's secret key, so changing
``PRIVEX_SECRET_KEY`` then makes stored credentials unreadable: they must be entered again.

An ``oauth2`` credential whose secret holds ``refresh_token``, ``client_id`` and ``client_secret`` keeps itself usable:
when its ``access_token`` is missing or within a minute of expiring, ``fresh`` asks the provider's token endpoint for a
new one (RFC 6749 §6, as Google's ``https://oauth2.googleapis.com/token`` speaks it) and stores it, encrypted, with its
expiry. So a Google Docs source still reindexes after the hour an access token lives.
"""

from __future__ import annotations

import base64
import json
import re
import time
from typing import Any

import httpx
import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app, has_request_context, request

from privex.clock import now
from privex.contracts import SourceError
from privex.extensions import db
from privex.models import Chatbot, Credential, CredentialAuditLog, Document, Workspace
from privex.models.credentials import CREDENTIAL_TYPES
from privex.services.errors import Conflict, Invalid
from privex.services.fields import check_name

MAX_SECRET_BYTES = 16 * 1024
TOKEN_URLS = {"google": "https://oauth2.googleapis.com/token", "google_docs": "https://oauth2.googleapis.com/token"}
REFRESH_MARGIN_SECONDS = 60  # an access token this close to its expiry is refreshed before use
REFRESH_TIMEOUT_SECONDS = 20


class CredentialUnreadable(Exception):
    """The stored secret cannot be decrypted with the configured keys (the secret key or credentials keys changed)."""


def _fernet() -> MultiFernet:
    keys = current_app.config.get("CREDENTIALS_KEYS") or []
    if not keys:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"privex credentials").derive(
            current_app.config["SECRET_KEY"].encode())
        keys = [base64.urlsafe_b64encode(derived).decode()]
    return MultiFernet([Fernet(key) for key in keys])


def encrypt(secret: dict[str, Any]) -> bytes:
    return _fernet().encrypt(json.dumps(secret, separators=(",", ":")).encode())


def decrypt(credential: Credential) -> dict[str, Any]:
    try:
        return json.loads(_fernet().decrypt(credential.encrypted_data))
    except InvalidToken as error:
        raise CredentialUnreadable(
            f"the credential {credential.name!r} cannot be decrypted: the encryption key changed since it was "
            f"saved; enter its secret again") from error


def hints(secret: dict[str, Any]) -> dict[str, str]:
    """What the user may see of each secret field: its last four characters, when it is long enough to keep it safe."""
    shown = {}
    for key, value in secret.items():
        text = value if isinstance(value, str) else json.dumps(value)
        shown[key] = f"…{text[-4:]}" if len(text) >= 16 else "…"
    return shown


def audit(credential: Credential, action: str, user_id=None, **detail) -> None:
    db.session.add(CredentialAuditLog(
        # The clock's time, not the transaction's: the log's order is the order things happened in.
        created_at=now(), workspace_id=credential.workspace_id, credential_id=credential.id, user_id=user_id,
        action=action,
        ip_address=request.remote_addr if has_request_context() else None, detail=detail))


def in_workspace(workspace_id, credential_id) -> Credential | None:
    """The credential ``credential_id`` if it belongs to the workspace, else None (callers say why it matters)."""
    return db.session.scalar(sa.select(Credential).where(Credential.workspace_id == workspace_id,
                                                         Credential.id == credential_id))


def set_secret(credential: Credential, secret: dict[str, Any]) -> None:
    credential.encrypted_data = encrypt(secret)
    credential.metadata_ = {**(credential.metadata_ or {}), "hints": hints(secret)}


def fresh(credential: Credential) -> dict[str, Any]:
    """The decrypted secret, its OAuth access token refreshed first when it has (nearly) expired and can be.

    Raises CredentialUnreadable when the provider refuses (the user must connect the account again) and SourceError
    (``transient``) when it cannot be reached or fails on its side. Commits with the caller."""
    secret = decrypt(credential)
    if credential.credential_type != "oauth2" or not secret.get("refresh_token"):
        return secret
    expires_at = secret.get("access_token_expires_at")
    if secret.get("access_token") and isinstance(expires_at, (int, float)) and (
            expires_at > time.time() + REFRESH_MARGIN_SECONDS):
        return secret
    missing = [name for name in ("client_id", "client_secret") if not secret.get(name)]
    if missing:
        raise CredentialUnreadable(f"the credential {credential.name!r} has a refresh token but no "
                                   f"{' or '.join(missing)} to use it with; add them to its secret")
    url = {**TOKEN_URLS, **(current_app.config.get("OAUTH_TOKEN_URLS") or {})}.get(credential.provider)
    if url is None:
        raise CredentialUnreadable(f"no OAuth token endpoint is known for the provider {credential.provider!r}, so "
                                   f"the credential {credential.name!r} cannot refresh its access token (the "
                                   f"operator can name one in PRIVEX_OAUTH_TOKEN_URLS)")
    form = {"grant_type": "refresh_token", "refresh_token": secret["refresh_token"],
            "client_id": secret["client_id"], "client_secret": secret["client_secret"]}
    try:
        response = httpx.post(url, data=form, headers={"Accept": "application/json"},
                              timeout=REFRESH_TIMEOUT_SECONDS)
    except httpx.HTTPError as error:
        raise SourceError(f"could not reach {credential.provider}'s token endpoint to refresh the access token "
                          f"({type(error).__name__})", transient=True) from error
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code == 429 or response.status_code >= 500:
        raise SourceError(f"{credential.provider}'s token endpoint failed (HTTP {response.status_code}); "
                          f"will try again", transient=True)
    token = body.get("access_token") if isinstance(body, dict) else None
    if response.status_code != 200 or not isinstance(token, str) or not token:
        reason = body.get("error_description") or body.get("error") if isinstance(body, dict) else None
        raise CredentialUnreadable(
            f"{credential.provider} refused to refresh the access token of {credential.name!r} "
            f"({reason or f'HTTP {response.status_code}'}): connect the account again and update the credential")
    lifetime = body.get("expires_in")
    secret["access_token"] = token
    secret["access_token_expires_at"] = int(time.time()) + (int(lifetime) if isinstance(lifetime, (int, float))
                                                            else 3600)
    if isinstance(body.get("refresh_token"), str) and body["refresh_token"]:
        secret["refresh_token"] = body["refresh_token"]  # a provider that rotates refresh tokens
    set_secret(credential, secret)
    audit(credential, "update", reason="access token refreshed")
    return secret


def use(credential: Credential, purpose: str, **detail) -> dict[str, Any]:
    """The secret for ``purpose`` (e.g. "ingest"), refreshed when needed (``fresh``), recorded in the audit log.
    Commits with the caller."""
    secret = fresh(credential)
    credential.last_used_at = now()
    audit(credential, "use", purpose=purpose, **detail)
    return secret


def check_secret(secret, field: str = "secret") -> dict[str, Any]:
    if not isinstance(secret, dict) or not secret:
        raise Invalid('give at least one secret value, e.g. {"token": "..."}', errors={field: ["an object of values"]})
    if len(json.dumps(secret)) > MAX_SECRET_BYTES:
        raise Invalid(f"the secret is larger than {MAX_SECRET_BYTES // 1024} KB",
                      errors={field: [f"at most {MAX_SECRET_BYTES // 1024} KB"]})
    return secret


def check_details(changes: dict) -> None:
    errors = {}
    check_name(changes, errors)
    if "provider" in changes and not (isinstance(changes["provider"], str)
                                      and re.fullmatch(r"[a-z0-9_\-]{1,64}", changes["provider"])):
        errors["provider"] = ["a provider name in lower case, e.g. notion, google_docs, openai"]
    if "credential_type" in changes and changes["credential_type"] not in CREDENTIAL_TYPES:
        errors["credential_type"] = [f"one of {', '.join(CREDENTIAL_TYPES)}"]
    if "metadata_" in changes and (not isinstance(changes["metadata_"], dict) or "hints" in changes["metadata_"]):
        errors["metadata"] = ["an object of non-secret details (`hints` is written by the server)"]
    if errors:
        raise Invalid("some credential details are invalid; see `errors`", errors=errors)


def _refuse_taken_name(workspace_id, name: str) -> None:
    if db.session.scalar(sa.select(Credential.id).where(Credential.workspace_id == workspace_id,
                                                        Credential.name == name)) is not None:
        raise Conflict(f"a credential named {name!r} already exists in this workspace",
                       errors={"name": ["already used by another credential of this workspace"]})


def create(workspace: Workspace, user_id, details: dict, secret: dict) -> Credential:
    """Store a credential, its secret encrypted; audited. Commits."""
    check_details(details)
    check_secret(secret)
    _refuse_taken_name(workspace.id, details["name"])
    credential = Credential(workspace_id=workspace.id, created_by_id=user_id, **{
        key: details[key] for key in ("name", "provider", "credential_type", "metadata_", "expires_at")
        if key in details})
    set_secret(credential, secret)
    db.session.add(credential)
    db.session.flush()
    audit(credential, "create", user_id)
    db.session.commit()
    return credential


def update(credential: Credential, user_id, changes: dict, secret: dict | None = None) -> Credential:
    """Rename it, change its details or replace its whole secret; audited. Commits."""
    check_details(changes)
    if secret is not None:
        check_secret(secret)
    if "name" in changes and changes["name"] != credential.name:
        _refuse_taken_name(credential.workspace_id, changes["name"])
    if "metadata_" in changes:
        changes = {**changes, "metadata_": {**changes["metadata_"], "hints": credential.metadata_.get("hints", {})}}
    for key in ("name", "metadata_", "expires_at"):
        if key in changes:
            setattr(credential, key, changes[key])
    if secret is not None:
        set_secret(credential, secret)
    audit(credential, "update", user_id, fields=sorted(changes) + (["secret"] if secret is not None else []))
    db.session.commit()
    return credential


def rotate(credential: Credential, user_id, secret: dict) -> Credential:
    """Replace the secret with a new one (after rotating it at the provider); audited. Commits."""
    set_secret(credential, check_secret(secret))
    audit(credential, "rotate", user_id)
    db.session.commit()
    return credential


def used_by(credential: Credential) -> dict[str, int]:
    """How many documents (connector sources: Notion, Google Docs, ...) and chatbots (their model's key) read with
    the credential: what stops working when it is deleted."""
    def count(statement):
        return db.session.scalar(statement.with_only_columns(sa.func.count()))

    return {"documents": count(sa.select(Document.id).where(Document.workspace_id == credential.workspace_id,
                                                            Document.credential_id == credential.id)),
            "chatbots": count(sa.select(Chatbot.id).where(
                Chatbot.workspace_id == credential.workspace_id,
                Chatbot.config["credential_id"].astext == str(credential.id)))}


def delete(credential: Credential) -> None:
    """Sources and bots that used it fail, saying so, until given another. Commits."""
    db.session.delete(credential)
    db.session.commit()
