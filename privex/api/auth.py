"""Sign-in with email and password, tokens, the signed-in user, and switching organization/workspace.

Wallet sign-in (EVM, Solana, Cosmos) lives in ``privex.api.wallets``; both end in ``token_response``.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields, validate

from privex.api.errors import UNAUTHORIZED_HEADERS
from privex.api.serialize import fields_of
from privex.auth.tokens import (TokenError, issue_access_token, issue_refresh_token, revoke_sessions,
                                rotate_refresh_token, start_session)
from privex.clock import now
from privex.extensions import db, limiter
from privex.models import AuthSession, Organization, OrganizationMember, User, Workspace, WorkspaceMember
from privex.services import accounts, registration
from privex.services.workspaces import default_context, first_workspace
from privex.tenancy.context import auth_required, caller, public, require_user
from privex.tenancy.permissions import effective_workspace_role

blp = Blueprint("auth", __name__, url_prefix="/auth", description="Sign-in, tokens and context")


def auth_rate_limit():
    """Failed attempts per client address on one auth endpoint; successes do not count."""
    return limiter.limit(lambda: current_app.config["AUTH_RATELIMIT"],
                         deduct_when=lambda response: response.status_code >= 400)


class IdentitySchema(Schema):
    provider = fields.String()
    provider_id = fields.String(metadata={"description": "email or wallet address"})
    created_at = fields.DateTime()


class WorkspaceBriefSchema(Schema):
    id = fields.UUID()
    name = fields.String()
    role = fields.String(allow_none=True)


class OrganizationBriefSchema(Schema):
    id = fields.UUID()
    name = fields.String()
    role = fields.String()
    is_personal = fields.Boolean()
    workspaces = fields.List(fields.Nested(WorkspaceBriefSchema))


class ContextSchema(Schema):
    organization_id = fields.UUID(allow_none=True)
    workspace_id = fields.UUID(allow_none=True)
    organization_role = fields.String(allow_none=True)
    workspace_role = fields.String(allow_none=True)


class UserSchema(Schema):
    id = fields.UUID()
    username = fields.String()
    display_name = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    identities = fields.List(fields.Nested(IdentitySchema))
    created_at = fields.DateTime()


class MeSchema(UserSchema):
    organizations = fields.List(fields.Nested(OrganizationBriefSchema))
    context = fields.Nested(ContextSchema)


class TokenSchema(Schema):
    access_token = fields.String(required=True)
    refresh_token = fields.String(required=True, allow_none=True, metadata={
        "description": "the next refresh token; null from switch-context, where the current one stays valid"})
    token_type = fields.String(required=True, metadata={"example": "bearer"})
    expires_in = fields.Integer(required=True, metadata={"description": "seconds until the access token expires"})
    user = fields.Nested(UserSchema, required=True)
    context = fields.Nested(ContextSchema, required=True)


class SignupSchema(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    password = fields.String(required=True, load_only=True, validate=validate.Length(max=256))
    display_name = fields.String(validate=validate.Length(min=1, max=120))


class LoginSchema(Schema):
    email = fields.String(required=True, validate=validate.Length(max=255))
    password = fields.String(required=True, load_only=True, validate=validate.Length(max=256))


class ChangePasswordSchema(Schema):
    current_password = fields.String(required=True, load_only=True, validate=validate.Length(max=256))
    new_password = fields.String(required=True, load_only=True, validate=validate.Length(max=256))


class RefreshSchema(Schema):
    refresh_token = fields.String(required=True, validate=validate.Length(max=200))


class SwitchContextSchema(Schema):
    organization_id = fields.UUID(required=True)
    workspace_id = fields.UUID(load_default=None)


class MessageSchema(Schema):
    message = fields.String()


def context_of(session: AuthSession) -> dict:
    org_role = workspace_role = None
    if session.organization_id:
        org_role = db.session.scalar(sa.select(OrganizationMember.role).where(
            OrganizationMember.organization_id == session.organization_id,
            OrganizationMember.user_id == session.user_id))
    if session.workspace_id:
        workspace_role = effective_workspace_role(org_role, db.session.scalar(sa.select(WorkspaceMember.role).where(
            WorkspaceMember.workspace_id == session.workspace_id, WorkspaceMember.user_id == session.user_id)))
    return {"organization_id": session.organization_id, "workspace_id": session.workspace_id,
            "organization_role": org_role, "workspace_role": workspace_role}


def tokens_for(session: AuthSession, refresh_token: str | None) -> dict:
    context = context_of(session)
    if session.organization_id and context["organization_role"] is None:
        # Removed from that organization since: land where a fresh sign-in would.
        session.organization_id, session.workspace_id = default_context(session.user_id)
        context = context_of(session)
    user = db.session.get(User, session.user_id)
    access = issue_access_token(session, context["organization_role"], context["workspace_role"])
    db.session.commit()
    return {"access_token": access, "refresh_token": refresh_token, "token_type": "bearer",
            "expires_in": current_app.config["ACCESS_TOKEN_MINUTES"] * 60, "user": user, "context": context}


def token_response(user: User, provider: str) -> dict:
    """Open a new session for ``user`` in their default context and return its tokens."""
    user.last_login_at = now()
    organization_id, workspace_id = default_context(user.id)
    session = start_session(user.id, provider, organization_id, workspace_id)
    return tokens_for(session, issue_refresh_token(session))


@blp.route("/email/signup")
@public
class EmailSignup(MethodView):
    decorators = [auth_rate_limit()]

    @blp.arguments(SignupSchema)
    @blp.response(201, TokenSchema)
    @blp.alt_response(409, description="An account with this email exists")
    def post(self, payload):
        """Create an account with email and password

        Also creates the user's personal organization with a default workspace, and signs them in."""
        user = registration.sign_up(payload["email"], payload["password"], payload.get("display_name"))
        return token_response(user, "email")


@blp.route("/email/login")
@public
class EmailLogin(MethodView):
    decorators = [auth_rate_limit()]

    @blp.arguments(LoginSchema)
    @blp.response(200, TokenSchema)
    @blp.alt_response(401, description="Wrong email or password")
    def post(self, payload):
        """Sign in with email and password"""
        user = accounts.check_email_password(payload["email"], payload["password"])
        if user is None:
            abort(401, message="Wrong email or password.", headers=UNAUTHORIZED_HEADERS)
        return token_response(user, "email")


@blp.route("/email/change-password")
class ChangePassword(MethodView):
    decorators = [auth_rate_limit(), auth_required]

    @blp.arguments(ChangePasswordSchema)
    @blp.response(200, MessageSchema)
    def post(self, payload):
        """Change the password; signs out every other session of the user"""
        revoked = accounts.change_password(require_user(), payload["current_password"], payload["new_password"],
                                           keep_session=caller().session_id)
        return {"message": f"Password changed; {revoked} other session(s) signed out."}


@blp.route("/refresh")
@public
class Refresh(MethodView):
    decorators = [auth_rate_limit()]

    @blp.arguments(RefreshSchema)
    @blp.response(200, TokenSchema)
    @blp.alt_response(401, description="An unknown, expired or already spent refresh token")
    def post(self, payload):
        """Exchange a refresh token for a new access token and the next refresh token

        Each refresh token works once. Presenting a spent one revokes its whole session."""
        try:
            session, refresh_token = rotate_refresh_token(payload["refresh_token"])
        except TokenError as error:
            abort(401, message=str(error), headers=UNAUTHORIZED_HEADERS)
        return tokens_for(session, refresh_token)


@blp.route("/logout")
class Logout(MethodView):
    decorators = [auth_required]

    @blp.response(204)
    def post(self):
        """Sign out this session: its access and refresh tokens stop working"""
        require_user()  # an API key has no session to end: a 403 says so rather than a 204 that did nothing
        session = db.session.get(AuthSession, caller().session_id) if caller().session_id else None
        if session is not None:
            revoke_sessions([session], reason="logout")
            db.session.commit()


@blp.route("/me")
class Me(MethodView):
    decorators = [auth_required]

    @blp.response(200, MeSchema)
    def get(self):
        """The signed-in user, their sign-in identities, organizations, workspaces and current context"""
        user = require_user()
        organizations = []
        memberships = db.session.execute(
            sa.select(OrganizationMember, Organization).join(Organization)
            .where(OrganizationMember.user_id == user.id).order_by(OrganizationMember.created_at)).all()
        own_roles = dict(db.session.execute(sa.select(WorkspaceMember.workspace_id, WorkspaceMember.role).where(
            WorkspaceMember.user_id == user.id)).all())
        for member, organization in memberships:
            workspaces = db.session.scalars(sa.select(Workspace).where(
                Workspace.organization_id == organization.id).order_by(Workspace.created_at)).all()
            visible = [{"id": ws.id, "name": ws.name, "role": effective_workspace_role(member.role,
                                                                                       own_roles.get(ws.id))}
                       for ws in workspaces]
            organizations.append({"id": organization.id, "name": organization.name, "role": member.role,
                                  "is_personal": organization.is_personal,
                                  "workspaces": [ws for ws in visible if ws["role"]]})
        session = db.session.get(AuthSession, caller().session_id)
        return fields_of(user, UserSchema, organizations=organizations, context=context_of(session))


@blp.route("/switch-context")
class SwitchContext(MethodView):
    decorators = [auth_required]

    @blp.arguments(SwitchContextSchema)
    @blp.response(200, TokenSchema)
    @blp.alt_response(404, description="No such organization or workspace of yours")
    def post(self, payload):
        """Switch to another organization and workspace you belong to; returns tokens for the new context"""
        user = require_user()
        org_role = caller().org_role(payload["organization_id"])
        if org_role is None:
            abort(404, message="Organization not found.")
        workspace_id = payload["workspace_id"]
        if workspace_id is None:
            workspace_id = first_workspace(payload["organization_id"], user.id, org_role)
        else:
            workspace = db.session.get(Workspace, workspace_id)
            if workspace is None or workspace.organization_id != payload["organization_id"] or \
                    not caller().sees(workspace=workspace):
                abort(404, message="Workspace not found.")
        session = db.session.get(AuthSession, caller().session_id)
        session.organization_id = payload["organization_id"]
        session.workspace_id = workspace_id
        # The context lives on the session, so the caller's refresh token carries on and follows the switch.
        return tokens_for(session, None)
