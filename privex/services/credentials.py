"""Third-party credentials (a Notion integration token, a Google access token, an API key): encrypted at rest with
Fernet, never returned by the API, and every decrypting use written to the credential's audit log.

The encryption keys come from ``PRIVEX_CREDENTIALS_KEYS`` (Fernet keys, newest first; older ones still decrypt, so a
key can be rotated without losing credentials). Unset, one key is derived from the app's secret key, so changing
``PRIVEX_SECRET_KEY`` then makes stored credentials unreadable: they must be entered again.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app, has_request_context, request

from privex.auth.tokens import now
from privex.extensions import db
from privex.models import Credential, CredentialAuditLog

MAX_SECRET_BYTES = 16 * 1024


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


def set_secret(credential: Credential, secret: dict[str, Any]) -> None:
    credential.encrypted_data = encrypt(secret)
    credential.metadata_ = {**(credential.metadata_ or {}), "hints": hints(secret)}


def use(credential: Credential, purpose: str, **detail) -> dict[str, Any]:
    """The decrypted secret for ``purpose`` (e.g. "ingest"), recorded in the audit log. Commits with the caller."""
    secret = decrypt(credential)
    credential.last_used_at = now()
    audit(credential, "use", purpose=purpose, **detail)
    return secret

