"""Wallet sign-in: challenge -> verify -> (optionally) link, for EVM (MetaMask), Solana (Phantom), Cosmos (Keplr).

A challenge is a single-use nonce kept in Redis for ``PRIVEX_WALLET_NONCE_SECONDS`` with the exact message the
wallet must sign. Its domain and URI are this install's configured address (``PRIVEX_PUBLIC_URL``), never the
request's ``Host``: a phishing site could otherwise ask for a challenge naming itself, have a visitor's wallet sign it
there (the wallet sees nothing wrong) and replay the signature here.

Verify takes the nonce (reading it deletes it, so a replay finds nothing) and the signature, and checks the
signature against the issued message only, whose domain and URI must still be the configured ones. A client may
send the ``message`` it signed: it must be the issued one byte for byte, and the refusal names the first field that
differs. Every failure is a 401 with the reason, never a 500.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields, validate

from privex.api.auth import TokenSchema, auth_rate_limit, token_response
from privex.api.errors import UNAUTHORIZED_HEADERS
from privex.auth import wallets
from privex.clock import now
from privex.extensions import db, get_redis
from privex.models import AuthIdentity
from privex.services import registration
from privex.tenancy.context import auth_required, public, require_user
from privex.urls import public_host, public_origin

blp = Blueprint("wallets", __name__, url_prefix="/auth", description="Wallet sign-in (EVM, Solana, Cosmos)")

PROVIDERS = ("evm", "solana", "cosmos")
NONCE_PREFIX = "privex:wallet-nonce:"
DEFAULT_CHAIN = {"evm": "1", "solana": "mainnet", "cosmos": "cosmoshub-4"}


class ChallengeRequestSchema(Schema):
    address = fields.String(required=True, validate=validate.Length(min=1, max=128))
    chain_id = fields.String(load_default=None, validate=validate.Length(min=1, max=64),
                             metadata={"description": "EVM chain id (default 1), Solana cluster, Cosmos chain id"})
    prefix = fields.String(load_default=None, validate=validate.Regexp(r"^[a-z]{1,20}$"),
                           metadata={"description": "Cosmos only: the bech32 prefix the address must have"})


class ChallengeSchema(Schema):
    nonce = fields.String()
    message = fields.String(metadata={"description": "sign exactly this text"})
    address = fields.String()
    chain_id = fields.String()
    issued_at = fields.DateTime()
    expires_at = fields.DateTime()


class VerifySchema(Schema):
    nonce = fields.String(required=True, validate=validate.Length(min=1, max=128))
    signature = fields.String(required=True, validate=validate.Length(min=1, max=1024))
    public_key = fields.String(load_default=None, validate=validate.Length(max=256),
                               metadata={"description": "Cosmos: base64 compressed secp256k1 key"})
    address = fields.String(load_default=None, validate=validate.Length(max=128),
                            metadata={"description": "optional: must be the challenge's address"})
    chain_id = fields.String(load_default=None, validate=validate.Length(max=64),
                             metadata={"description": "optional: must be the challenge's chain"})
    message = fields.String(load_default=None, validate=validate.Length(min=1, max=2048), metadata={
        "description": "optional: the exact text the wallet signed; it must be the challenge's message byte for "
                       "byte (the signature is checked against the issued message in any case)"})


class LinkedSchema(Schema):
    provider = fields.String()
    provider_id = fields.String()
    created_at = fields.DateTime()


def unauthorized(reason: str):
    abort(401, message=f"wallet sign-in failed: {reason}", headers=UNAUTHORIZED_HEADERS)


def _provider(provider: str) -> str:
    if provider not in PROVIDERS:
        abort(404, message=f"unknown wallet type {provider!r}; use one of {', '.join(PROVIDERS)}")
    return provider


def issue_challenge(provider: str, payload: dict) -> dict:
    try:
        address = wallets.normalize_address(provider, payload["address"], prefix=payload.get("prefix"))
    except wallets.WalletVerificationError as error:
        abort(422, message=str(error), errors={"address": [str(error)]})
    ttl = timedelta(seconds=current_app.config["WALLET_NONCE_SECONDS"])
    chain_id = canonical_chain_id(provider, payload.get("chain_id") or DEFAULT_CHAIN[provider])
    try:
        challenge = wallets.build_challenge(
            provider, address, domain=public_host(), uri=public_origin(), chain_id=chain_id,
            nonce=secrets.token_hex(16), issued_at=now(), ttl=ttl)
    except wallets.WalletVerificationError as error:
        abort(422, message=str(error), errors={"chain_id": [str(error)]})
    stored = {**asdict(challenge), "issued_at": challenge.issued_at.isoformat(),
              "expires_at": challenge.expires_at.isoformat()}
    get_redis().set(NONCE_PREFIX + challenge.nonce, json.dumps(stored), ex=int(ttl.total_seconds()))
    return {key: getattr(challenge, key) for key in ("nonce", "message", "address", "chain_id", "issued_at",
                                                     "expires_at")}


def canonical_chain_id(provider: str, chain_id: str) -> str:
    """MetaMask reports EVM chain ids in hex (``0x89``); EIP-4361 messages carry them in decimal (``137``)."""
    if provider != "evm" or not chain_id.lower().startswith("0x"):
        return chain_id
    try:
        return str(int(chain_id, 16))
    except ValueError:
        abort(422, message="invalid chain id", errors={"chain_id": ["not a hexadecimal or decimal chain id"]})


def verified_address(provider: str, payload: dict) -> tuple[str, dict]:
    """Spend the nonce and check the signature; the wallet's canonical address and its non-secret details."""
    raw = get_redis().getdel(NONCE_PREFIX + payload["nonce"])
    if raw is None:
        unauthorized("unknown, already used or expired nonce; ask for a new challenge")
    stored = json.loads(raw)
    if stored["provider"] != provider:
        unauthorized(f"this nonce was issued for a {stored['provider']} wallet, not {provider}")
    challenge = wallets.Challenge(**{**stored, "issued_at": datetime.fromisoformat(stored["issued_at"]),
                                     "expires_at": datetime.fromisoformat(stored["expires_at"])})
    if payload.get("message") is not None:
        difference = wallets.message_difference(challenge.message, payload["message"])
        if difference:
            unauthorized(difference)
    issued = wallets.parse_message(challenge.message) or {}
    if (issued.get("domain"), issued.get("uri")) != (public_host(), public_origin()):
        unauthorized(f"this challenge was issued for another address than {public_origin()} (the site's address "
                     "changed since); ask for a new challenge")
    if payload.get("address"):
        try:
            claimed = wallets.normalize_address(provider, payload["address"])
        except wallets.WalletVerificationError as error:
            unauthorized(str(error))
        if claimed != challenge.address:
            unauthorized("the address differs from the one the challenge was issued for")
    if payload.get("chain_id") and canonical_chain_id(provider, payload["chain_id"]) != challenge.chain_id:
        unauthorized("the chain id differs from the one the challenge was issued for")
    try:
        address = wallets.verify(challenge, signature=payload["signature"], public_key=payload.get("public_key"))
    except wallets.WalletVerificationError as error:
        unauthorized(str(error))
    details = {"chain_id": challenge.chain_id}
    if payload.get("public_key"):
        details["public_key"] = payload["public_key"]
    return address, details


def find_identity(provider: str, address: str) -> AuthIdentity | None:
    return db.session.scalar(sa.select(AuthIdentity).where(AuthIdentity.provider == provider,
                                                           AuthIdentity.provider_id == address))


@blp.route("/<any(evm,solana,cosmos):provider>/challenge")
@public
class WalletChallenge(MethodView):
    decorators = [auth_rate_limit()]

    @blp.arguments(ChallengeRequestSchema)
    @blp.response(200, ChallengeSchema)
    def post(self, payload, provider):
        """Get a single-use message for the wallet to sign (valid 5 minutes)"""
        return issue_challenge(_provider(provider), payload)


@blp.route("/<any(evm,solana,cosmos):provider>/verify")
@public
class WalletVerify(MethodView):
    decorators = [auth_rate_limit()]

    @blp.arguments(VerifySchema)
    @blp.response(200, TokenSchema)
    @blp.alt_response(401, description="Replayed, expired or foreign nonce, wrong address or chain, a message other "
                                       "than the one issued, bad signature")
    def post(self, payload, provider):
        """Sign in with a signed challenge; a new wallet gets a new account"""
        provider = _provider(provider)
        address, details = verified_address(provider, payload)
        identity = find_identity(provider, address)
        if identity is None:
            user = registration.sign_up_with_wallet(provider, address, details)
        else:
            user = identity.user
            if not user.is_active:
                unauthorized("this account is disabled")
            identity.last_used_at = now()
        return token_response(user, provider)


@blp.route("/<any(evm,solana,cosmos):provider>/link")
class WalletLink(MethodView):
    decorators = [auth_rate_limit(), auth_required]

    @blp.arguments(VerifySchema)
    @blp.response(201, LinkedSchema)
    @blp.alt_response(409, description="The wallet belongs to another account")
    def post(self, payload, provider):
        """Add a wallet to your account, so you can sign in with it too"""
        provider = _provider(provider)
        user = require_user()
        address, details = verified_address(provider, payload)
        identity = find_identity(provider, address)
        if identity is not None and identity.user_id != user.id:
            abort(409, message="this wallet is already linked to another account")
        if identity is not None:
            return identity, 200  # already yours: nothing to do
        identity = AuthIdentity(user_id=user.id, provider=provider, provider_id=address, credentials=details)
        db.session.add(identity)
        db.session.commit()
        return identity
