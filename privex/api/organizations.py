"""Organizations: CRUD, members and invitations, billing, ownership transfer; and accepting an invitation."""

from __future__ import annotations

import sqlalchemy as sa
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from privex.api.pagination import Listing, SelectPage
from privex.api.serialize import fields_of
from privex.extensions import db
from privex.models import Invitation, Organization, OrganizationMember, User
from privex.models.tenancy import ORGANIZATION_ROLES, SUBSCRIPTION_TIERS, WORKSPACE_ROLES
from privex.services import analytics, invitations, plans
from privex.services import organizations as service
from privex.tenancy.context import TenantView, auth_required, caller, require_user
from privex.urls import public_url

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
    accept_url = fields.String(metadata={"description": "shown once: the page where the invitee signs up or signs "
                                                        "in and accepts (the API: POST /invitations/{token}/accept)"})


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
        view["accept_url"] = public_url(f"/invitations/{token}")  # the page: sign up or in, then accept
    return view


@blp.route("")
class Organizations(MethodView):
    decorators = [auth_required]

    @blp.response(200, OrganizationSchema(many=True))
    @blp.paginate(SelectPage)
    def get(self):
        """List your organizations"""
        statement = (sa.select(Organization, OrganizationMember.role).join(OrganizationMember)
                     .where(OrganizationMember.user_id == require_user().id)
                     .order_by(Organization.created_at, Organization.id))
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
        return with_role(service.update_organization(self.organization, payload))

    @blp.response(204)
    def delete(self, org_id):
        """Delete an organization with every workspace and resource in it (owners only)"""
        service.delete_organization(self.organization)


@blp.route("/<uuid:org_id>/members")
class Members(TenantView):
    permissions = {"get": "org.members.read", "post": "org.members.invite"}

    @blp.response(200, MemberSchema(many=True))
    def get(self, org_id):
        """List an organization's members"""
        members = db.session.scalars(sa.select(OrganizationMember).where(
            OrganizationMember.organization_id == self.organization.id).order_by(OrganizationMember.created_at))
        return [member_view(member) for member in members]

    @blp.arguments(InviteSchema)
    @blp.response(201, InviteResultSchema)
    @blp.alt_response(402, description="The plan's member limit is reached")
    @blp.alt_response(409, description="Already a member, or already invited")
    def post(self, payload, org_id):
        """Invite someone: an existing user is added at once, anyone else gets a pending invitation"""
        organization = self.organization
        status, made, token = invitations.invite_or_add(
            organization, require_user(), caller().org_role(organization.id), payload["email"], payload["role"],
            workspace_id=payload["workspace_id"], workspace_role=payload["workspace_role"])
        if status == "added":
            return {"status": "added", "member": member_view(made), "invitation": None}
        return {"status": "invited", "member": None, "invitation": invitation_view(made, token)}


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
        member = service.member_of(self.organization, user_id)
        service.change_organization_role(member, payload["role"], caller().org_role(self.organization.id))
        return member_view(member)

    @blp.response(204)
    @blp.alt_response(409, description="The last owner cannot leave")
    def delete(self, org_id, user_id):
        """Remove a member, or leave the organization yourself (the last owner cannot)"""
        me = require_user()
        member = service.member_of(self.organization, user_id)
        service.remove_organization_member(member, caller().org_role(self.organization.id), me.id)


@blp.route("/<uuid:org_id>/invitations")
class Invitations(TenantView):
    permissions = {"get": "org.members.invite"}

    @blp.response(200, InvitationSchema(many=True))
    def get(self, org_id):
        """List pending invitations (not yet accepted, revoked or expired)"""
        return db.session.scalars(invitations.pending(self.organization)).all()


@blp.route("/<uuid:org_id>/invitations/<uuid:invitation_id>")
class InvitationItem(TenantView):
    permissions = {"delete": "org.members.invite"}

    @blp.response(204)
    def delete(self, org_id, invitation_id):
        """Revoke a pending invitation"""
        invitations.revoke(self.organization, invitation_id)


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
        return billing_view(service.update_billing(self.organization, payload,
                                                   by_operator=require_user().is_superuser))


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
    by_chatbot = fields.List(fields.Dict(), metadata={
        "description": "per bot: chatbot_id (or chatflow_id), name, tokens"})


@blp.route("/<uuid:org_id>/usage")
class OrganizationUsage(TenantView):
    permissions = {"get": "org.billing.read"}

    @blp.arguments(UsageArgs, location="query")
    @blp.response(200, UsageSchema)
    def get(self, args, org_id):
        """Token usage of every bot of the organization over the last `days` days"""
        return analytics.organization_usage(self.organization, args["days"])


@blp.route("/<uuid:org_id>/transfer")
class TransferOrganization(TenantView):
    permissions = {"post": "org.transfer"}

    @blp.arguments(OrganizationTransferSchema)
    @blp.response(200, MemberSchema(many=True))
    def post(self, payload, org_id):
        """Make another member the owner; you stay on as admin"""
        organization = self.organization
        service.transfer_organization(organization, require_user().id, payload["user_id"])
        members = db.session.scalars(sa.select(OrganizationMember).where(
            OrganizationMember.organization_id == organization.id).order_by(OrganizationMember.created_at))
        return [member_view(member) for member in members]


@invitations_blp.route("/<string:token>/accept")
class AcceptInvitation(MethodView):
    decorators = [auth_required]

    @invitations_blp.response(200, OrganizationSchema)
    def post(self, token):
        """Accept an invitation sent to your email"""
        invitation = invitations.accept_invitation(token, require_user())
        return with_role(db.session.get(Organization, invitation.organization_id))
