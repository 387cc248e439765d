"""What every chain shares: the error type, the ``Challenge`` record and the human-readable sign-in message.

The message follows EIP-4361 ("Sign-In with Ethereum") line by line for every chain, with only the account name
changed: MetaMask recognises the format (and warns when ``domain`` is not the page's origin), Phantom's Sign-In
With Solana uses the same layout, and users see one familiar text whichever wallet they use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone


class WalletVerificationError(Exception):
    """Raised with a short human reason (``str(error)``), e.g. 'signature does not match the address'."""


@dataclass(frozen=True)
class Challenge:
    provider: str  # "evm" | "solana" | "cosmos"
    address: str  # canonical form, see normalize_address
    chain_id: str  # evm: decimal ("1"); solana: e.g. "mainnet"; cosmos: e.g. "cosmoshub-4"
    nonce: str
    message: str  # the exact text the wallet must sign
    issued_at: datetime  # tz-aware UTC, whole seconds (as written in the message)
    expires_at: datetime


# EIP-4361 requires an alphanumeric nonce of at least 8 characters; wallets that parse the message (MetaMask)
# fall back to a plain, unchecked signing prompt otherwise. secrets.token_hex(16) fits; token_urlsafe does not.
_NONCE = re.compile(r"[A-Za-z0-9]{8,}")
# An RFC 3986 authority or URI never holds whitespace; refusing it also keeps a value from adding lines.
_NO_SPACE = re.compile(r"\S+")


def iso8601(moment: datetime) -> str:
    """``2026-11-24T21:00:00Z``: RFC 3339 in UTC, the form EIP-4361 shows."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_seconds(moment: datetime) -> datetime:
    """``moment`` in UTC without microseconds, so the stored time is exactly the one the message shows."""
    if not isinstance(moment, datetime) or moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("issued_at must be a timezone-aware datetime")
    return moment.astimezone(timezone.utc).replace(microsecond=0)


def build_message(
    account: str,
    *,
    domain: str,
    address: str,
    statement: str,
    uri: str,
    chain_id: str,
    nonce: str,
    issued_at: datetime,
    expires_at: datetime,
) -> str:
    """The EIP-4361 text for an ``account`` ("Ethereum", "Solana", "Cosmos").

    The server-side arguments are checked here (``ValueError``: a configuration mistake, not a user's):
    a value holding a line break could forge other fields of the message.
    """
    if not isinstance(domain, str) or not _NO_SPACE.fullmatch(domain):
        raise ValueError("domain must be a non-empty authority without whitespace")
    if not isinstance(uri, str) or not _NO_SPACE.fullmatch(uri):
        raise ValueError("uri must be a non-empty URI without whitespace")
    if not isinstance(statement, str) or "\n" in statement or "\r" in statement:
        raise ValueError("statement must be a single line")
    if not isinstance(nonce, str) or not _NONCE.fullmatch(nonce):
        raise ValueError("nonce must be at least 8 letters or digits (EIP-4361)")
    lines = [f"{domain} wants you to sign in with your {account} account:", address, ""]
    lines += [statement] if statement else []  # EIP-4361: without a statement, only its own line goes
    lines += [
        "",
        f"URI: {uri}",
        "Version: 1",
        f"Chain ID: {chain_id}",
        f"Nonce: {nonce}",
        f"Issued At: {iso8601(issued_at)}",
        f"Expiration Time: {iso8601(expires_at)}",
    ]
    return "\n".join(lines)


# The lines of a message ``build_message`` wrote, each field's value in a named group.
_MESSAGE = re.compile(
    r"(?P<domain>\S+) wants you to sign in with your (?P<account>\w+) account:\n"
    r"(?P<address>\S+)\n"
    r"\n"
    r"(?:(?P<statement>[^\n]+)\n)?"
    r"\n"
    r"URI: (?P<uri>\S+)\n"
    r"Version: (?P<version>\S+)\n"
    r"Chain ID: (?P<chain_id>\S+)\n"
    r"Nonce: (?P<nonce>\S+)\n"
    r"Issued At: (?P<issued_at>\S+)\n"
    r"Expiration Time: (?P<expiration_time>\S+)"
)
# Each field as a refusal names it, in the order the message shows them.
FIELD_NAMES = {"domain": "domain", "account": "account type", "address": "address", "statement": "statement",
               "uri": "URI", "version": "version", "chain_id": "chain ID", "nonce": "nonce",
               "issued_at": "issued-at time", "expiration_time": "expiration time"}


def parse_message(message: str) -> dict[str, str | None] | None:
    """The fields of a sign-in message laid out as ``build_message`` writes it; ``None`` for any other text."""
    match = _MESSAGE.fullmatch(message) if isinstance(message, str) else None
    return match.groupdict() if match else None


def _shown(value: str | None) -> str:
    return "missing" if value is None else repr(value if len(value) <= 80 else value[:77] + "...")


def message_difference(issued: str, signed: str) -> str | None:
    """Why ``signed`` is not the ``issued`` message, naming the first field that differs; ``None`` when identical.

    Only the exact issued text counts (EIP-4361 "Verifying"): a message with the same fields but other bytes (line
    endings, spaces) is refused too, as one that is not the issued message."""
    if signed == issued:
        return None
    ours, theirs = parse_message(issued), parse_message(signed)
    if theirs is None:
        return "the signed message is not a sign-in message of this site; sign the challenge's message as it is"
    for field, name in FIELD_NAMES.items():
        if theirs[field] != ours[field]:
            return f"the signed message's {name} is {_shown(theirs[field])}, not {_shown(ours[field])} as issued"
    return "the signed message differs from the one issued; sign the challenge's message as it is"


def expiry(issued_at: datetime, ttl: timedelta) -> datetime:
    if not isinstance(ttl, timedelta) or ttl <= timedelta(0):
        raise ValueError("ttl must be a positive timedelta")
    return (issued_at + ttl).replace(microsecond=0)  # the message shows whole seconds; so does the record
