"""Wallet sign-in: the message a wallet signs, and the check of its signature, for EVM, Solana and Cosmos.

Pure functions: the caller keeps the ``Challenge`` (with its single-use nonce) between ``build_challenge`` and
``verify``, and ``verify`` checks the signature of that kept message only: a message the client says it signed is
compared with it first (``message_difference``), and ``parse_message`` reads its fields back. Chain-specific code
lives in ``evm``, ``solana`` and ``cosmos``; the shared message layout in ``_base``.

Errors: ``WalletVerificationError`` for anything a client sent (provider, address, chain id, signature, key);
``ValueError`` from ``build_challenge`` for server-side mistakes (naive time, bad ttl, nonce, domain, uri,
statement).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from . import cosmos, evm, solana
from ._base import (Challenge, WalletVerificationError, build_message, expiry, message_difference, parse_message,
                    utc_seconds)

__all__ = ["Challenge", "WalletVerificationError", "build_challenge", "message_difference", "normalize_address",
           "parse_message", "verify"]

_CHAINS = {"evm": evm, "solana": solana, "cosmos": cosmos}


def _chain(provider: str):
    chain = _CHAINS.get(provider) if isinstance(provider, str) else None
    if chain is None:
        raise WalletVerificationError("unknown wallet provider")
    return chain


def normalize_address(provider: str, address: str, *, prefix: str | None = None) -> str:
    """The canonical form of ``address``: EIP-55 (evm), unchanged base58 (solana), lower-case bech32 (cosmos).

    ``prefix`` (the bech32 HRP the address must carry, e.g. "cosmos") applies to cosmos only; other providers
    ignore it.
    """
    chain = _chain(provider)
    if chain is cosmos:
        return cosmos.normalize_address(address, prefix)
    return chain.normalize_address(address)


def build_challenge(
    provider: str,
    address: str,
    *,
    domain: str,
    uri: str,
    chain_id: str,
    nonce: str,
    issued_at: datetime,
    ttl: timedelta,
    statement: str = "Sign in to PrivexBot",
) -> Challenge:
    """The challenge for ``address`` to sign. ``issued_at`` is kept in UTC, truncated to whole seconds.

    A cosmos address is not checked against a prefix here: call ``normalize_address(..., prefix=...)`` first.
    """
    chain = _chain(provider)
    address = normalize_address(provider, address)
    chain_id = chain.check_chain_id(chain_id)
    issued_at = utc_seconds(issued_at)
    expires_at = expiry(issued_at, ttl)
    message = build_message(
        chain.ACCOUNT,
        domain=domain,
        address=address,
        statement=statement,
        uri=uri,
        chain_id=chain_id,
        nonce=nonce,
        issued_at=issued_at,
        expires_at=expires_at,
    )
    return Challenge(provider, address, chain_id, nonce, message, issued_at, expires_at)


def verify(challenge: Challenge, *, signature: str, public_key: str | None = None) -> str:
    """The canonical address that signed ``challenge.message``; ``WalletVerificationError`` on any failure.

    ``public_key`` is required for cosmos (base64 compressed key), optional for solana (must equal the address)
    and ignored for evm (the key is recovered from the signature).
    """
    try:
        chain = _chain(challenge.provider)
        if datetime.now(timezone.utc) > challenge.expires_at:
            raise WalletVerificationError("challenge expired")
        return chain.verify(challenge, signature, public_key)
    except WalletVerificationError:
        raise
    except Exception as error:  # a library's own exception, or a malformed challenge: never leak another type
        raise WalletVerificationError("signature could not be verified") from error
