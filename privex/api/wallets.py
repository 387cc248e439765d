"""Wallet sign-in over the API: challenge -> verify -> (optionally) link, for EVM (MetaMask), Solana (Phantom) and
Cosmos (Keplr). The rules (a single-use nonce, a message naming PRIVEX_PUBLIC_URL never the Host header, a signature
checked against the issued message only) are ``privex.services.wallet_signin``'s; failures are 401s with the reason.
"""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from privex.api.auth import TokenSchema, auth_rate_limit, token_response
from privex.services import wallet_signin
from privex.tenancy.context import auth_required, public, require_user

blp = Blueprint("wallets", __name__, url_prefix="/auth", description="Wallet sign-in (EVM, Solana, Cosmos)")

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


@blp.route("/<any(evm,solana,cosmos):provider>/challenge")
@public
class WalletChallenge(MethodView):
    decorators = [auth_rate_limit()]

    @blp.arguments(ChallengeRequestSchema)
    @blp.response(200, ChallengeSchema)
    def post(self, payload, provider):
        """Get a single-use message for the wallet to sign (valid 5 minutes)"""
        return wallet_signin.issue_challenge(provider, payload["address"], chain_id=payload.get("chain_id"),
                                             prefix=payload.get("prefix"))


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
        return token_response(wallet_signin.sign_in(provider, **payload), provider)


@blp.route("/<any(evm,solana,cosmos):provider>/link")
class WalletLink(MethodView):
    decorators = [auth_rate_limit(), auth_required]

    @blp.arguments(VerifySchema)
    @blp.response(201, LinkedSchema)
    @blp.alt_response(409, description="The wallet belongs to another account")
    def post(self, payload, provider):
        """Add a wallet to your account, so you can sign in with it too"""
        identity, created = wallet_signin.link(require_user(), provider, **payload)
        return identity if created else (identity, 200)
