"""Solana wallets (Phantom and alike): ed25519 ``signMessage`` over the UTF-8 sign-in message.

The address is the base58 public key itself. ``signMessage`` returns the raw 64-byte signature; the browser
may send it base58- or base64-encoded.
"""

from __future__ import annotations

import base64
import binascii
import re

import base58
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from ._base import Challenge, WalletVerificationError

ACCOUNT = "Solana"

_CHAIN_ID = re.compile(r"[A-Za-z0-9:_-]{1,64}")  # "mainnet", "devnet", "solana:mainnet", ...


def _b58(text: str) -> bytes:
    """Strict base58: b58decode strips trailing whitespace, so only a string that encodes back unchanged counts."""
    raw = base58.b58decode(text)
    if base58.b58encode(raw).decode("ascii") != text:
        raise ValueError("not canonical base58")
    return raw


def normalize_address(address: str) -> str:
    """``address`` unchanged, once it is known to be base58 of 32 bytes."""
    try:
        if isinstance(address, str) and len(_b58(address)) == 32:
            return address
    except ValueError:  # bad characters; UnicodeEncodeError is a ValueError too
        pass
    raise WalletVerificationError("not a Solana address")


def check_chain_id(chain_id: str) -> str:
    if not isinstance(chain_id, str) or not _CHAIN_ID.fullmatch(chain_id):
        raise WalletVerificationError("invalid chain id")
    return chain_id


def _signature_bytes(signature: str) -> bytes:
    if not isinstance(signature, str):
        raise WalletVerificationError("malformed signature")
    # base58 first: a 64-byte base64 string always ends in "==", which base58 refuses, so the two cannot clash.
    try:
        raw = _b58(signature)
        if len(raw) == 64:
            return raw
    except ValueError:
        pass
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise WalletVerificationError("malformed signature") from None
    if len(raw) != 64:
        raise WalletVerificationError("malformed signature")
    return raw


def verify(challenge: Challenge, signature: str, public_key: str | None) -> str:
    """The address whose key signed ``challenge.message``. A ``public_key``, if sent, must be that address."""
    if public_key is not None and public_key != challenge.address:
        raise WalletVerificationError("public key does not match the address")
    raw_signature = _signature_bytes(signature)
    try:
        key = VerifyKey(_b58(challenge.address))
        key.verify(challenge.message.encode("utf-8"), raw_signature)
    except BadSignatureError:  # also libsodium's refusal of small-order keys and non-canonical signatures
        raise WalletVerificationError("signature does not match the address") from None
    except Exception as error:
        raise WalletVerificationError("not a Solana address") from error
    return challenge.address
