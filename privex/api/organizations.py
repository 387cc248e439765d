"""Organizations: CRUD, members and invitations, billing, ownership transfer; and accepting an invitation."""

from __future__ import annotations

import sqlalchemy as sa
from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from privex.api.pagination import Listing, SelectPage
from privex.api.serialize import fields_of
from privex.auth.tokens import now
from privex.extensions import db
from privex.models import Invitation, Organization, OrganizationMember, User, Workspace
from privex.models.tenancy import ORGANIZATION_ROLES, SUBSCRIPTION_TIERS, WORKSPACE_ROLES
from privex.services import organizations as service
from privex.services import plans
from privex.tenancy.context import TenantView, auth_required, caller, require_user

blp = Blueprint("organizations", __name__, url_prefix="/orgs", description="Organizations, members, billing")
invitations_blp = Blueprint("invitations", __name__, url_prefix="/invitations", description="Invitations")


class OrganizationSchema(Schema):
    id = fields.UUID(dump_only=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    billing_email = fields.Email(allow_none=True, validate=validate.Length(max=254))
    subscription_tier = fields.String(dump_only=True)
    is_personal = fields.Boolean(dump_only=True)
    role = fields.String(dump_only=True, metadata={"description": "your role in it"})
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)


class OrganizationUpdateSchema(Schema):
    name = fields.String(validate=validate.Length(min=1, max=120))


class MemberSchema(Schema):
    user_id = fields.UUID()
    username = fields.String()
    display_name = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    role = fields.String()
    joined_at = fields.DateTime()


class InviteSchema(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    role = fields.String(load_default="member", validate=validate.OneOf(ORGANIZATION_ROLES))
    workspace_id = fields.UUID(load_default=None, metadata={"description": "also add them to this workspace"})
    workspace_role = fields.String(load_default="viewer", validate=validate.OneOf(WORKSPACE_ROLES))


class InvitationSchema(Schema):
    id = fields.UUID()
    email = fields.String()
    role = fields.String()
    workspace_id = fields.UUID(allow_none=True)
    workspace_role = fields.String(allow_none=True)
    expires_at = fields.DateTime()
    created_at = fields.DateTime()
    token = fields.String(metadata={"description": "shown once, when the invitation is created"})
    accept_url = fields.String(metadata={"description": "shown once: where the invitee accepts"})


class InviteResultSchema(Schema):
    status = fields.String(metadata={"description": "`added` (existing user) or `invited` (pending invitation)"})
    member = fields.Nested(MemberSchema, allow_none=True)
    invitation = fields.Nested(InvitationSchema, allow_none=True)


class RoleSchema(Schema):
    role = fields.String(required=True, validate=validate.OneOf(ORGANIZATION_ROLES))


class BillingSchema(Schema):
    subscription_tier = fields.String(validate=validate.OneOf(SUBSCRIPTION_TIERS))
    billing_email = fields.Email(allow_none=True, validate=validate.Length(max=254))
    limits = fields.Dict(dump_only=True)
    usage = fields.Dict(dump_only=True)

    @validates_schema
    def not_empty(self, data, **kwargs):
        if not data:
            raise ValidationError("send subscription_tier and/or billing_email")


class OrganizationTransferSchema(Schema):
    user_id = fields.UUID(required=True)


def with_role(organization: Organization) -> dict:
    return fields_of(organization, OrganizationSchema, role=caller().org_role(organization.id))


def member_view(member: OrganizationMember) -> dict:
    user = db.session.get(User, member.user_id)
    return {"user_id": user.id, "username": user.username, "display_name": user.display_name,
            "email": user.email, "role": member.role, "joined_at": member.created_at}


def invitation_view(invitation: Invitation, token: str | None = None) -> dict:
    view = fields_of(invitation, InvitationSchema)
    if token:
        view["token"] = token
        view["accept_url"] = request.host_url.rstrip("/") + f"/api/v1/invitations/{token}/accept"
    return view


@blp.route("")
class Organizations(MethodView):
    decorators = [auth_required]

    @blp.response(200, OrganizationSchema(many=True))
    @blp.paginate(SelectPage)
    def get(self):
        """List your organizations"""
        statement = (sa.select(Organization, OrganizationMember.role).join(OrganizationMember)
                     .where(OrganizationMember.user_id == require_user().id).order_by(Organization.created_at))
        return Listing(statement, lambda row: fields_of(row.Organization, OrganizationSchema, role=row.role))

    @blp.arguments(OrganizationSchema)
    @blp.response(201, OrganizationSchema)
    def post(self, payload):
        """Create an organization (you become its owner; it gets a default workspace)"""
        organization, _ = service.create_organization(require_user(), payload["name"],
                                                      billing_email=payload.get("billing_email"))
        db.session.commit()
        return with_role(organization)


@blp.route("/<uuid:org_id>")
class OrganizationItem(TenantView):
    permissions = {"get": "org.read", "patch": "org.update", "delete": "org.delete"}

    @blp.response(200, OrganizationSchema)
    def get(self, org_id):
        """Get an organization"""
        return with_role(self.organization)

    @blp.arguments(OrganizationUpdateSchema)
    @blp.response(200, OrganizationSchema)
    def patch(self, payload, org_id):
        """Rename an organization (admins and owners)"""
        organization = self.organization
        if "name" in payload:
            organization.name = payload["name"]
        db.session.commit()
        return with_role(organization)

    @blp.response(204)
    def delete(self, org_id):
        """Delete an organization with every workspace and resource in it (owners only)"""
        db.session.execute(sa.delete(Organization).where(Organization.id == self.organization.id))
        db.session.commit()


@blp.route("/<uuid:org_id>/members")
class Members(TenantView):
    permissions = {"get": "org.members.read", "post": "org.members.invite"}

    @blp.response(200, MemberSchema(many=True))
    def get(self, org_id):
        """List an organization's members"""
        organization = self.organization
        members = db.session.scalars(sa.select(OrganizationMember).where(
            OrganizationMember.organization_id == organization.id).order_by(OrganizationMember.created_at))
        return [member_view(member) for member in members]

    @blp.arguments(InviteSchema)
    @blp.response(201, InviteResultSchema)
    @blp.alt_response(402, description="The plan's member limit is reached")
    @blp.alt_response(409, description="Already a member, or already invited")
    def post(self, payload, org_id):
        """Invite someone: an existing user is added at once, anyone else gets a pending invitation"""
        organization = self.organization
        if payload["role"] == "owner" and caller().org_role(organization.id) != "owner":
            abort(403, message="only an owner can invite an owner")
        workspace = None
        if payload["workspace_id"]:
            workspace = db.session.get(Workspace, payload["workspace_id"])
            if workspace is None or workspace.organization_id != organization.id:
                abort(422, message="the workspace is not in this organization",
                      errors={"workspace_id": ["not a workspace of this organization"]})
        user = service.user_by_email(payload["email"])
        inviter = require_user()
        if user is not None:
            member = service.add_organization_member(organization, user, payload["role"], inviter.id)
            if workspace is not None:
                service.add_workspace_member(workspace, user, payload["workspace_role"])
            db.session.commit()
            return {"status": "added", "member": member_view(member), "invitation": None}
        invitation, token = service.invite(organization, payload["email"], payload["role"], inviter.id,
                                           workspace=workspace, workspace_role=payload["workspace_role"])
        db.session.commit()
        return {"status": "invited", "member": None, "invitation": invitation_view(invitation, token)}


@blp.route("/<uuid:org_id>/members/<uuid:user_id>")
class Member(TenantView):
    permissions = {
        "patch": "org.members.update",
        # Anyone may leave; removing someone else takes an admin.
        "delete": lambda url: "org.read" if url["user_id"] == caller().user_id else "org.members.remove",
    }

    @blp.arguments(RoleSchema)
    @blp.response(200, MemberSchema)
    @blp.alt_response(409, description="The last owner cannot be demoted")
    def patch(self, payload, org_id, user_id):
        """Change a member's role (owners alone grant or take away `owner`)"""
        organization = self.organization
        member = service.organization_member(organization.id, user_id)
        if member is None:
            abort(404, message="Member not found.")
        service.change_organization_role(member, payload["role"], caller().org_role(organization.id))
        db.session.commit()
        return member_view(member)

    @blp.response(204)
    @blp.alt_response(409, description="The last owner cannot leave")
    def delete(self, org_id, user_id):
        """Remove a member, or leave the organization yourself (the last owner cannot)"""
        me = require_user()
        organization = self.organization
        member = service.organization_member(organization.id, user_id)
        if member is None:
            abort(404, message="Member not found.")
        service.remove_organization_member(member, caller().org_role(organization.id), me.id)
        db.session.commit()


@blp.route("/<uuid:org_id>/invitations")
class Invitations(TenantView):
    permissions = {"get": "org.members.invite"}

    @blp.response(200, InvitationSchema(many=True))
    def get(self, org_id):
        """List pending invitations (not yet accepted, revoked or expired)"""
        organization = self.organization
        return db.session.scalars(sa.select(Invitation).where(
            Invitation.organization_id == organization.id, Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None), Invitation.expires_at > now()).order_by(Invitation.created_at)).all()


@blp.route("/<uuid:org_id>/invitations/<uuid:invitation_id>")
class InvitationItem(TenantView):
    permissions = {"delete": "org.members.invite"}

    @blp.response(204)
    def delete(self, org_id, invitation_id):
        """Revoke a pending invitation"""
        organization = self.organization
        invitation = db.session.get(Invitation, invitation_id)
        if invitation is None or invitation.organization_id != organization.id or invitation.revoked_at:
            abort(404, message="Invitation not found.")
        if invitation.accepted_at is not None:
            abort(409, message="this invitation was already accepted; remove the member instead")
        invitation.revoked_at = now()
        db.session.commit()


@blp.route("/<uuid:org_id>/billing")
class Billing(TenantView):
    permissions = {"get": "org.billing.read", "patch": "org.billing.update"}

    @blp.response(200, BillingSchema)
    def get(self, org_id):
        """Plan tier, billing email, the plan's limits and current usage"""
        return billing_view(self.organization)

    @blp.arguments(BillingSchema)
    @blp.response(200, BillingSchema)
    def patch(self, payload, org_id):
        """Change the billing email (owners); the plan tier is changed by a platform operator"""
        organization = self.organization
        if "subscription_tier" in payload and payload["subscription_tier"] != organization.subscription_tier:
            if not require_user().is_superuser:
                abort(403, message="plan changes are made by the platform operator")
            organization.subscription_tier = payload["subscription_tier"]
        if "billing_email" in payload:
            organization.billing_email = payload["billing_email"]
        db.session.commit()
        return billing_view(organization)


def billing_view(organization: Organization) -> dict:
    return {"subscription_tier": organization.subscription_tier, "billing_email": organization.billing_email,
            "limits": plans.LIMITS[organization.subscription_tier], "usage": plans.usage(organization.id)}


class UsageArgs(Schema):
    days = fields.Integer(load_default=30, validate=validate.Range(min=1, max=366))


class UsageSchema(Schema):
    since = fields.DateTime()
    messages = fields.Integer(metadata={"description": "LLM calls (answers), test chats included"})
    prompt_tokens = fields.Integer()
    completion_tokens = fields.Integer()
    total_tokens = fields.Integer()
    estimated_share = fields.Float(metadata={"description": "share of calls whose tokens were estimated"})
    by_chatbot = fields.List(fields.Dict(), metadata={"description": "per bot: chatbot_id, name, tokens"})


@blp.route("/<uuid:org_id>/usage")
class OrganizationUsage(TenantView):
    permissions = {"get": "org.billing.read"}

    @blp.arguments(UsageArgs, location="query")
    @blp.response(200, UsageSchema)
    def get(self, args, org_id):
        """Token usage of every bot of the organization over the last `days` days"""
        from datetime import timedelta

        from privex.models import Chatbot, TokenUsage

        since = now() - timedelta(days=args["days"])
        scope = (TokenUsage.organization_id == self.organization.id, TokenUsage.created_at >= since)
        count, prompt, completion, estimated = db.session.execute(sa.select(
            sa.func.count(), sa.func.coalesce(sa.func.sum(TokenUsage.prompt_tokens), 0),
            sa.func.coalesce(sa.func.sum(TokenUsage.completion_tokens), 0),
            sa.func.count().filter(TokenUsage.estimated)).where(*scope)).one()
        rows = db.session.execute(sa.select(
            TokenUsage.chatbot_id, Chatbot.name, sa.func.sum(TokenUsage.prompt_tokens),
            sa.func.sum(TokenUsage.completion_tokens)).outerjoin(Chatbot, Chatbot.id == TokenUsage.chatbot_id)
            .where(*scope).group_by(TokenUsage.chatbot_id, Chatbot.name)
            .order_by(sa.func.sum(TokenUsage.prompt_tokens + TokenUsage.completion_tokens).desc())).all()
        return {"since": since, "messages": count, "prompt_tokens": prompt, "completion_tokens": completion,
                "total_tokens": prompt + completion, "estimated_share": round(estimated / count, 3) if count else 0.0,
                "by_chatbot": [{"chatbot_id": str(bot_id) if bot_id else None, "name": name,
                                "prompt_tokens": int(p), "completion_tokens": int(c)} for bot_id, name, p, c in rows]}


@blp.route("/<uuid:org_id>/transfer")
class TransferOrganization(TenantView):
    permissions = {"post": "org.transfer"}

    @blp.arguments(OrganizationTransferSchema)
    @blp.response(200, MemberSchema(many=True))
    def post(self, payload, org_id):
        """Make another member the owner; you stay on as admin"""
        organization = self.organization
        service.transfer_organization(organization, require_user().id, payload["user_id"])
        db.session.commit()
        members = db.session.scalars(sa.select(OrganizationMember).where(
            OrganizationMember.organization_id == organization.id).order_by(OrganizationMember.created_at))
        return [member_view(member) for member in members]


@invitations_blp.route("/<string:token>/accept")
class AcceptInvitation(MethodView):
    decorators = [auth_required]

    @invitations_blp.response(200, OrganizationSchema)
    def post(self, token):
        """Accept an invitation sent to your email"""
        invitation = service.accept_invitation(token, require_user())
        db.session.commit()
        return with_role(db.session.get(Organization, invitation.organization_id))
