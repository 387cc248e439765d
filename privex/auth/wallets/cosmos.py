"""Cosmos wallets (Keplr and alike): ADR-36 ``signArbitrary`` with a secp256k1 key and a bech32 address.

The wallet signs SHA-256 of an amino JSON StdSignDoc that wraps the message; it returns the 64-byte compact
signature and its 33-byte compressed public key (both base64). The signature is checked against that key, and
the key against the address (bech32 of RIPEMD-160(SHA-256(key))). Chains whose accounts use Ethereum-style keys
(``ethsecp256k1``: Evmos, Injective, ...) derive addresses differently and are not supported.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re

from bech32 import bech32_decode, bech32_encode, convertbits
from coincurve import PublicKey
from coincurve.ecdsa import cdata_to_der, deserialize_compact

from ._base import Challenge, WalletVerificationError

ACCOUNT = "Cosmos"

# Cosmos SDK chain ids: "cosmoshub-4", "secret-4", "osmosis-1", at most 50 characters.
_CHAIN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,49}")


def _ripemd160_pycryptodome(data: bytes) -> bytes:
    from Crypto.Hash import RIPEMD160

    return RIPEMD160.new(data).digest()


def _ripemd160_hashlib(data: bytes) -> bytes:
    return hashlib.new("ripemd160", data).digest()


try:
    hashlib.new("ripemd160")
    _ripemd160 = _ripemd160_hashlib
except ValueError:  # OpenSSL 3.0.0-3.0.6 builds ship RIPEMD-160 only in the legacy provider
    _ripemd160 = _ripemd160_pycryptodome


def normalize_address(address: str, prefix: str | None = None) -> str:
    """``address`` in lower case, once it is bech32 of 20 bytes (with HRP ``prefix`` when given)."""
    hrp, data = bech32_decode(address) if isinstance(address, str) else (None, None)
    payload = convertbits(data, 5, 8, False) if data is not None else None
    # 20 bytes: a key's address. 32-byte addresses belong to modules and contracts, which cannot sign.
    if payload is None or len(payload) != 20:
        raise WalletVerificationError("not a Cosmos address")
    if prefix is not None and hrp != prefix:
        raise WalletVerificationError(f"not a {prefix} address")
    return address.lower()


def check_chain_id(chain_id: str) -> str:
    if not isinstance(chain_id, str) or not _CHAIN_ID.fullmatch(chain_id):
        raise WalletVerificationError("invalid chain id")
    return chain_id


def sign_doc(message: str, signer: str) -> bytes:
    """The exact bytes ADR-36 signs for ``message``: canonical JSON (sorted keys, no spaces) of an amino StdSignDoc.

    cosmjs also escapes ``& < >`` as ``\\u0026``-style sequences; base64 and bech32 never contain them.
    """
    doc = {
        "account_number": "0",
        "chain_id": "",  # ADR-36: empty, so the signature cannot be replayed as a transaction
        "fee": {"amount": [], "gas": "0"},
        "memo": "",
        "msgs": [
            {
                "type": "sign/MsgSignData",
                "value": {"data": base64.b64encode(message.encode("utf-8")).decode("ascii"), "signer": signer},
            }
        ],
        "sequence": "0",
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("utf-8")


def address_of(public_key: bytes, prefix: str) -> str:
    """The bech32 account address of a 33-byte compressed secp256k1 key."""
    return bech32_encode(prefix, convertbits(_ripemd160(hashlib.sha256(public_key).digest()), 8, 5))


def _b64(text: object, size: int, what: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True) if isinstance(text, str) else b""
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != size:
        raise WalletVerificationError(f"malformed {what}")
    return raw


def verify(challenge: Challenge, signature: str, public_key: str | None) -> str:
    """The address whose key (``public_key``, base64) signed ``challenge.message`` the ADR-36 way."""
    if public_key is None:
        raise WalletVerificationError("public key required")
    raw_key = _b64(public_key, 33, "public key")
    raw_signature = _b64(signature, 64, "signature")
    try:
        key = PublicKey(raw_key)  # refuses bytes that are not a point on the curve
    except ValueError:
        raise WalletVerificationError("malformed public key") from None
    prefix, _ = bech32_decode(challenge.address)
    if prefix is None or address_of(raw_key, prefix) != challenge.address.lower():
        raise WalletVerificationError("public key does not match the address")
    try:
        # PublicKey.verify takes DER only; coincurve's compact parser refuses r or s not below the curve order.
        der = cdata_to_der(deserialize_compact(raw_signature))
    except ValueError:
        raise WalletVerificationError("malformed signature") from None
    digest = hashlib.sha256(sign_doc(challenge.message, challenge.address)).digest()
    # libsecp256k1 accepts only low-S signatures, as the Cosmos SDK does; Keplr and cosmjs produce them.
    if not key.verify(der, digest, hasher=None):
        raise WalletVerificationError("signature does not match the address")
    return challenge.address.lower()
