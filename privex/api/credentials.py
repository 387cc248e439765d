"""Stored credentials of the current workspace (a Notion integration token, a Google access token, ...).

The secret goes in and is never given back: answers show its field names with their last characters. Every
creation, change, rotation and use is in the credential's audit log.
"""

from __future__ import annotations

import json

from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates

from privex.api.pagination import SelectPage
from privex.models import Credential, CredentialAuditLog
from privex.models.credentials import CREDENTIAL_TYPES
from privex.services import credentials as service
from privex.tenancy.context import ResourceView, caller, scoped

blp = Blueprint("credentials", __name__, url_prefix="/credentials", description="Stored credentials")


class SecretField(fields.Dict):
    """An object of secret values, at most 16 KB, never dumped."""

    def _deserialize(self, value, attr, data, **kwargs):
        secret = super()._deserialize(value, attr, data, **kwargs)
        if not secret:
            raise ValidationError("give at least one secret value, e.g. {\"token\": \"...\"}")
        if len(json.dumps(secret)) > service.MAX_SECRET_BYTES:
            raise ValidationError(f"the secret is larger than {service.MAX_SECRET_BYTES // 1024} KB")
        return secret


class CredentialSchema(Schema):
    id = fields.UUID(dump_only=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    provider = fields.String(required=True, validate=validate.Regexp(r"^[a-z0-9_\-]{1,64}$", error=(
        "a provider name in lower case, e.g. notion, google_docs, openai")))
    credential_type = fields.String(load_default="token", validate=validate.OneOf(CREDENTIAL_TYPES))
    secret = SecretField(required=True, load_only=True, metadata={
        "description": "the secret values, e.g. {\"token\": \"secret_...\"} for Notion or {\"access_token\": ...} "
                       "for Google; with credential_type oauth2, {\"refresh_token\", \"client_id\", "
                       "\"client_secret\"} keeps the access token fresh; never returned"})
    metadata = fields.Dict(attribute="metadata_", load_default=dict, metadata={
        "description": "non-secret details; `hints` shows the end of each secret value"})
    expires_at = fields.DateTime(allow_none=True)
    last_used_at = fields.DateTime(dump_only=True, allow_none=True)
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)

    @validates("metadata")
    def _no_hints(self, value, **kwargs):
        if "hints" in value:
            raise ValidationError("`hints` is written by the server")


class CredentialUpdateSchema(Schema):
    name = fields.String(validate=validate.Length(min=1, max=120))
    secret = SecretField(load_only=True, metadata={"description": "replaces the whole secret"})
    metadata = fields.Dict(attribute="metadata_")
    expires_at = fields.DateTime(allow_none=True)

    _no_hints = CredentialSchema._no_hints


class RotateSchema(Schema):
    secret = SecretField(required=True, load_only=True, metadata={"description": "the new secret"})


class CredentialListArgs(Schema):
    provider = fields.String(validate=validate.Length(max=64))


class AuditSchema(Schema):
    id = fields.UUID()
    action = fields.String()
    user_id = fields.UUID(allow_none=True)
    ip_address = fields.String(allow_none=True)
    detail = fields.Dict()
    created_at = fields.DateTime()


@blp.route("")
class Credentials(ResourceView):
    @blp.arguments(CredentialListArgs, location="query")
    @blp.response(200, CredentialSchema(many=True))
    @blp.paginate(SelectPage)
    def get(self, args):
        """List the workspace's credentials by name (never their secrets)"""
        statement = scoped(Credential)
        if args.get("provider"):
            statement = statement.where(Credential.provider == args["provider"])
        return statement.order_by(Credential.name, Credential.id)

    @blp.arguments(CredentialSchema)
    @blp.response(201, CredentialSchema)
    @blp.alt_response(409, description="A credential of that name exists in this workspace")
    def post(self, payload):
        """Store a credential, encrypted"""
        secret = payload.pop("secret")
        return service.create(self.workspace, caller().user_id, payload, secret)


@blp.route("/<uuid:cred_id>")
class CredentialItem(ResourceView):
    resources = {"cred_id": Credential}

    @blp.response(200, CredentialSchema)
    def get(self, cred_id):
        """Get a credential (its secret stays hidden)"""
        return self.found["cred_id"]

    @blp.arguments(CredentialUpdateSchema)
    @blp.response(200, CredentialSchema)
    @blp.alt_response(409, description="A credential of that name exists in this workspace")
    def patch(self, payload, cred_id):
        """Rename a credential, change its details or replace its secret"""
        secret = payload.pop("secret", None)
        return service.update(self.found["cred_id"], caller().user_id, payload, secret)

    @blp.response(204)
    def delete(self, cred_id):
        """Delete a credential; sources that read with it fail until given another"""
        service.delete(self.found["cred_id"])


@blp.route("/<uuid:cred_id>/rotate")
class RotateCredential(ResourceView):
    resources = {"cred_id": Credential}

    @blp.arguments(RotateSchema)
    @blp.response(200, CredentialSchema)
    def post(self, payload, cred_id):
        """Replace a credential's secret with a new one (after rotating it at the provider)"""
        return service.rotate(self.found["cred_id"], caller().user_id, payload["secret"])


@blp.route("/<uuid:cred_id>/audit-log")
class CredentialAudit(ResourceView):
    resources = {"cred_id": Credential}

    @blp.response(200, AuditSchema(many=True))
    @blp.paginate(SelectPage)
    def get(self, cred_id):
        """Who created, changed, rotated or used a credential, newest first"""
        return scoped(CredentialAuditLog).where(CredentialAuditLog.credential_id == cred_id).order_by(
            CredentialAuditLog.created_at.desc(), CredentialAuditLog.id)
