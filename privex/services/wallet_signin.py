"""Wallet sign-in: challenge -> verify -> sign in or link, for EVM (MetaMask), Solana (Phantom), Cosmos (Keplr); the
same for the API and the builder's pages.

A challenge is a single-use nonce kept in Redis for ``PRIVEX_WALLET_NONCE_SECONDS`` with the exact message the
wallet must sign. Its domain and URI are this install's configured address (``PRIVEX_PUBLIC_URL``), never the
request's ``Host``: a phishing site could otherwise ask for a challenge naming itself, have a visitor's wallet sign it
there (the wallet sees nothing wrong) and replay the signature here.

Verify takes the nonce (reading it deletes it, so a replay finds nothing) and the signature, and checks the
signature against the issued message only, whose domain and URI must still be the configured ones. A client may
send the ``message`` it signed: it must be the issued one byte for byte, and the refusal names the first field that
differs. Every failure is ``NotAuthenticated`` with the reason (a 401 in the API).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from privex.auth import wallets
from privex.clock import now
from privex.extensions import db, get_redis
from privex.models import AuthIdentity, User
from privex.services import registration
from privex.services.errors import Conflict, Invalid, NotAuthenticated, NotFound
from privex.urls import public_host, public_origin

PROVIDERS = ("evm", "solana", "cosmos")
NONCE_PREFIX = "privex:wallet-nonce:"
DEFAULT_CHAIN = {"evm": "1", "solana": "mainnet", "cosmos": "cosmoshub-4"}


def refused(reason: str) -> NotAuthenticated:
    return NotAuthenticated(f"wallet sign-in failed: {reason}")


def check_provider(provider: str) -> str:
    if provider not in PROVIDERS:
        raise NotFound(f"unknown wallet type {provider!r}; use one of {', '.join(PROVIDERS)}")
    return provider


def canonical_chain_id(provider: str, chain_id: str) -> str:
    """MetaMask reports EVM chain ids in hex (``0x89``); EIP-4361 messages carry them in decimal (``137``)."""
    if provider != "evm" or not chain_id.lower().startswith("0x"):
        return chain_id
    try:
        return str(int(chain_id, 16))
    except ValueError:
        raise Invalid("invalid chain id", errors={"chain_id": ["not a hexadecimal or decimal chain id"]}) from None


def issue_challenge(provider: str, address: str, *, chain_id: str | None = None, prefix: str | None = None) -> dict:
    """A single-use message for the wallet at ``address`` to sign: ``nonce``, ``message``, ``address``,
    ``chain_id``, ``issued_at``, ``expires_at``."""
    check_provider(provider)
    try:
        address = wallets.normalize_address(provider, address, prefix=prefix)
    except wallets.WalletVerificationError as error:
        raise Invalid(str(error), errors={"address": [str(error)]}) from error
    ttl = timedelta(seconds=current_app.config["WALLET_NONCE_SECONDS"])
    chain_id = canonical_chain_id(provider, chain_id or DEFAULT_CHAIN[provider])
    try:
        challenge = wallets.build_challenge(
            provider, address, domain=public_host(), uri=public_origin(), chain_id=chain_id,
            nonce=secrets.token_hex(16), issued_at=now(), ttl=ttl)
    except wallets.WalletVerificationError as error:
        raise Invalid(str(error), errors={"chain_id": [str(error)]}) from error
    stored = {**asdict(challenge), "issued_at": challenge.issued_at.isoformat(),
              "expires_at": challenge.expires_at.isoformat()}
    get_redis().set(NONCE_PREFIX + challenge.nonce, json.dumps(stored), ex=int(ttl.total_seconds()))
    return {key: getattr(challenge, key) for key in ("nonce", "message", "address", "chain_id", "issued_at",
                                                     "expires_at")}


def verified_address(provider: str, *, nonce: str, signature: str, public_key: str | None = None,
                     address: str | None = None, chain_id: str | None = None,
                     message: str | None = None) -> tuple[str, dict]:
    """Spend the nonce and check the signature; the wallet's canonical address and its non-secret details."""
    check_provider(provider)
    raw = get_redis().getdel(NONCE_PREFIX + nonce)
    if raw is None:
        raise refused("unknown, already used or expired nonce; ask for a new challenge")
    stored = json.loads(raw)
    if stored["provider"] != provider:
        raise refused(f"this nonce was issued for a {stored['provider']} wallet, not {provider}")
    challenge = wallets.Challenge(**{**stored, "issued_at": datetime.fromisoformat(stored["issued_at"]),
                                     "expires_at": datetime.fromisoformat(stored["expires_at"])})
    if message is not None:
        difference = wallets.message_difference(challenge.message, message)
        if difference:
            raise refused(difference)
    issued = wallets.parse_message(challenge.message) or {}
    if (issued.get("domain"), issued.get("uri")) != (public_host(), public_origin()):
        raise refused(f"this challenge was issued for another address than {public_origin()} (the site's address "
                      "changed since); ask for a new challenge")
    if address:
        try:
            claimed = wallets.normalize_address(provider, address)
        except wallets.WalletVerificationError as error:
            raise refused(str(error)) from error
        if claimed != challenge.address:
            raise refused("the address differs from the one the challenge was issued for")
    if chain_id and canonical_chain_id(provider, chain_id) != challenge.chain_id:
        raise refused("the chain id differs from the one the challenge was issued for")
    try:
        signer = wallets.verify(challenge, signature=signature, public_key=public_key)
    except wallets.WalletVerificationError as error:
        raise refused(str(error)) from error
    details = {"chain_id": challenge.chain_id}
    if public_key:
        details["public_key"] = public_key
    return signer, details


def find_identity(provider: str, address: str) -> AuthIdentity | None:
    return db.session.scalar(sa.select(AuthIdentity).where(AuthIdentity.provider == provider,
                                                           AuthIdentity.provider_id == address))


def sign_in(provider: str, **proof) -> User:
    """The user a signed challenge proves (see ``verified_address``); a wallet seen for the first time gets a new
    account with its personal organization. Flushed, not committed: the caller opens the session."""
    address, details = verified_address(provider, **proof)
    identity = find_identity(provider, address)
    if identity is None:
        return registration.sign_up_with_wallet(provider, address, details)
    if not identity.user.is_active:
        raise refused("this account is disabled")
    identity.last_used_at = now()
    return identity.user


def link(user: User, provider: str, **proof) -> tuple[AuthIdentity, bool]:
    """Add a wallet the user proved they hold to their account (so they can sign in with it too); returns the
    identity and whether it is new. Commits."""
    address, details = verified_address(provider, **proof)
    identity = find_identity(provider, address)
    if identity is not None and identity.user_id != user.id:
        raise Conflict("this wallet is already linked to another account")
    if identity is not None:
        return identity, False  # already yours: nothing to do
    identity = AuthIdentity(user_id=user.id, provider=provider, provider_id=address, credentials=details)
    db.session.add(identity)
    db.session.commit()
    return identity, True
