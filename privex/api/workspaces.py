"""Workspaces: create and list within an organization, get/update/delete, members, transfer, API keys."""

from __future__ import annotations

import sqlalchemy as sa
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from privex.api.pagination import Listing, SelectPage
from privex.api.serialize import fields_of
from privex.extensions import db
from privex.models import User, Workspace, WorkspaceMember
from privex.models.tenancy import WORKSPACE_ROLES
from privex.services import api_keys
from privex.services import workspaces as service
from privex.tenancy.context import TenantView, caller, require_user
from privex.tenancy.permissions import API_KEY_SCOPES, effective_workspace_role

blp = Blueprint("workspaces", __name__, url_prefix="", description="Workspaces, members and API keys")


class WorkspaceSchema(Schema):
    id = fields.UUID(dump_only=True)
    organization_id = fields.UUID(dump_only=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    description = fields.String(allow_none=True, validate=validate.Length(max=2000))
    settings = fields.Dict()
    is_default = fields.Boolean(dump_only=True)
    owner_id = fields.UUID(dump_only=True, allow_none=True)
    role = fields.String(dump_only=True, metadata={"description": "your effective role in it"})
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)


class WorkspaceUpdateSchema(Schema):
    name = fields.String(validate=validate.Length(min=1, max=120))
    description = fields.String(allow_none=True, validate=validate.Length(max=2000))
    settings = fields.Dict()


class WorkspaceMemberSchema(Schema):
    user_id = fields.UUID()
    username = fields.String()
    email = fields.String(allow_none=True)
    role = fields.String()
    joined_at = fields.DateTime()


class AddWorkspaceMemberSchema(Schema):
    user_id = fields.UUID(load_default=None)
    email = fields.Email(load_default=None, validate=validate.Length(max=254))
    role = fields.String(load_default="viewer", validate=validate.OneOf(WORKSPACE_ROLES))

    @validates_schema
    def one_of(self, data, **kwargs):
        if bool(data.get("user_id")) == bool(data.get("email")):
            raise ValidationError("give either user_id or email", "_schema")


class WorkspaceRoleSchema(Schema):
    role = fields.String(required=True, validate=validate.OneOf(WORKSPACE_ROLES))


class WorkspaceTransferSchema(Schema):
    user_id = fields.UUID(required=True)


class APIKeySchema(Schema):
    id = fields.UUID(dump_only=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    permissions = fields.List(fields.String(validate=validate.OneOf(sorted(API_KEY_SCOPES))),
                              load_default=lambda: ["read"], validate=validate.Length(min=1))
    expires_at = fields.AwareDateTime(allow_none=True, load_default=None)
    prefix = fields.String(dump_only=True, metadata={"description": "the key's public beginning, to recognise it"})
    last_used_at = fields.DateTime(dump_only=True, allow_none=True)
    revoked_at = fields.DateTime(dump_only=True, allow_none=True)
    created_at = fields.DateTime(dump_only=True)


class NewAPIKeySchema(APIKeySchema):
    key = fields.String(dump_only=True, metadata={"description": "the secret key: shown this once, never again"})


def with_role(workspace: Workspace) -> dict:
    who = caller()
    role = None if who.api_key else effective_workspace_role(who.org_role(workspace.organization_id),
                                                             who.workspace_role(workspace))
    return fields_of(workspace, WorkspaceSchema, role=role)


def workspace_member_view(member: WorkspaceMember) -> dict:
    user = db.session.get(User, member.user_id)
    return {"user_id": user.id, "username": user.username, "email": user.email, "role": member.role,
            "joined_at": member.created_at}


@blp.route("/orgs/<uuid:org_id>/workspaces")
class OrganizationWorkspaces(TenantView):
    permissions = {"get": "org.read", "post": "workspace.create"}

    @blp.response(200, WorkspaceSchema(many=True))
    @blp.paginate(SelectPage)
    def get(self, org_id):
        """List the organization's workspaces you can open"""
        organization = self.organization
        org_role = caller().org_role(organization.id)
        own_role = (sa.select(WorkspaceMember.role).where(WorkspaceMember.workspace_id == Workspace.id,
                                                          WorkspaceMember.user_id == require_user().id)
                    .scalar_subquery())
        statement = sa.select(Workspace, own_role.label("own_role")).where(
            Workspace.organization_id == organization.id)
        if org_role not in ("owner", "admin"):
            statement = statement.where(own_role.is_not(None))
        return Listing(statement.order_by(Workspace.is_default.desc(), Workspace.created_at, Workspace.id),
                       lambda row: fields_of(row.Workspace, WorkspaceSchema,
                                             role=effective_workspace_role(org_role, row.own_role)))

    @blp.arguments(WorkspaceSchema)
    @blp.response(201, WorkspaceSchema)
    @blp.alt_response(402, description="The plan's workspace limit is reached")
    @blp.alt_response(409, description="A workspace of that name exists in this organization")
    def post(self, payload, org_id):
        """Create a workspace (organization admins and owners)"""
        workspace = service.add_workspace(self.organization, require_user(), payload["name"],
                                          description=payload.get("description"), settings=payload.get("settings"))
        db.session.commit()
        return with_role(workspace)


@blp.route("/workspaces/<uuid:ws_id>")
class WorkspaceItem(TenantView):
    permissions = {"get": "workspace.read", "patch": "workspace.update", "delete": "workspace.delete"}

    @blp.response(200, WorkspaceSchema)
    def get(self, ws_id):
        """Get a workspace"""
        return with_role(self.workspace)

    @blp.arguments(WorkspaceUpdateSchema)
    @blp.response(200, WorkspaceSchema)
    @blp.alt_response(409, description="A workspace of that name exists in this organization")
    def patch(self, payload, ws_id):
        """Rename or describe a workspace, or change its settings (workspace admins)"""
        return with_role(service.update_workspace(self.workspace, payload))

    @blp.response(204)
    @blp.alt_response(409, description="The organization's last workspace")
    def delete(self, ws_id):
        """Delete a workspace and every resource in it (not the organization's last workspace)"""
        service.delete_workspace(self.workspace)


@blp.route("/workspaces/<uuid:ws_id>/members")
class WorkspaceMembers(TenantView):
    permissions = {"get": "workspace.members.read", "post": "workspace.members.invite"}

    @blp.response(200, WorkspaceMemberSchema(many=True))
    def get(self, ws_id):
        """List a workspace's members"""
        members = db.session.scalars(sa.select(WorkspaceMember).where(
            WorkspaceMember.workspace_id == self.workspace.id).order_by(WorkspaceMember.created_at))
        return [workspace_member_view(member) for member in members]

    @blp.arguments(AddWorkspaceMemberSchema)
    @blp.response(201, WorkspaceMemberSchema)
    @blp.alt_response(409, description="Already a member of the workspace")
    def post(self, payload, ws_id):
        """Add a member of the organization to the workspace (invite others to the organization first)"""
        return workspace_member_view(service.add_member(self.workspace, role=payload["role"],
                                                        user_id=payload["user_id"], email=payload["email"]))


@blp.route("/workspaces/<uuid:ws_id>/members/<uuid:user_id>")
class WorkspaceMemberItem(TenantView):
    permissions = {
        "patch": "workspace.members.update",
        "delete": lambda url: ("workspace.read" if url["user_id"] == caller().user_id
                               else "workspace.members.remove"),
    }

    @blp.arguments(WorkspaceRoleSchema)
    @blp.response(200, WorkspaceMemberSchema)
    def patch(self, payload, ws_id, user_id):
        """Change a member's workspace role"""
        return workspace_member_view(service.change_role(self.workspace, user_id, payload["role"]))

    @blp.response(204)
    def delete(self, ws_id, user_id):
        """Remove a member from the workspace, or leave it yourself"""
        service.remove_member(self.workspace, user_id)


@blp.route("/workspaces/<uuid:ws_id>/transfer")
class TransferWorkspace(TenantView):
    permissions = {"post": "workspace.transfer"}

    @blp.arguments(WorkspaceTransferSchema)
    @blp.response(200, WorkspaceSchema)
    def post(self, payload, ws_id):
        """Hand the workspace to another member of the organization: they become its owner and an admin"""
        return with_role(service.transfer(self.workspace, payload["user_id"]))


@blp.route("/workspaces/<uuid:ws_id>/api-keys")
class APIKeys(TenantView):
    permissions = {"get": "api_keys.read", "post": "api_keys.create"}

    @blp.response(200, APIKeySchema(many=True))
    def get(self, ws_id):
        """List the workspace's API keys (their prefixes; secrets are never shown again)"""
        return db.session.scalars(api_keys.listed(self.workspace)).all()

    @blp.arguments(APIKeySchema)
    @blp.response(201, NewAPIKeySchema)
    def post(self, payload, ws_id):
        """Create an API key; the response is the only time its secret is shown"""
        row, key = api_keys.create(self.workspace, require_user(), payload["name"], payload["permissions"],
                                   payload["expires_at"])
        return fields_of(row, APIKeySchema, key=key)


@blp.route("/workspaces/<uuid:ws_id>/api-keys/<uuid:key_id>")
class APIKeyItem(TenantView):
    permissions = {"delete": "api_keys.revoke"}

    @blp.response(204)
    def delete(self, ws_id, key_id):
        """Revoke an API key: it stops working at once"""
        api_keys.revoke(self.workspace, key_id)
