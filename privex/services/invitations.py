"""Invitations: bringing people into an organization. Someone with an account is added at once; anyone else gets a
single-use invitation (its token shown once, as a link to copy: nothing is emailed) that they accept after signing up
with the email it was sent to.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from privex.auth.tokens import sha256
from privex.clock import now
from privex.extensions import db
from privex.models import Invitation, Organization, OrganizationMember, User, Workspace, WorkspaceMember
from privex.models.tenancy import ORGANIZATION_ROLES, WORKSPACE_ROLES
from privex.services import plans
from privex.services.accounts import normalize_email
from privex.services.errors import Conflict, Forbidden, Gone, Invalid, NotFound
from privex.services.organizations import add_organization_member, organization_member
from privex.services.workspaces import add_workspace_member, user_by_email, workspace_member


def invite_or_add(organization: Organization, inviter: User, inviter_role: str, email: str, role: str, *,
                  workspace_id=None, workspace_role: str = "viewer") -> tuple[str, object, str | None]:
    """``("added", member, None)`` for someone with an account, ``("invited", invitation, token)`` for anyone else;
    either way also into the workspace ``workspace_id`` of the organization when given. Commits."""
    errors = {}
    if role not in ORGANIZATION_ROLES:
        errors["role"] = [f"one of {', '.join(ORGANIZATION_ROLES)}"]
    if workspace_role not in WORKSPACE_ROLES:
        errors["workspace_role"] = [f"one of {', '.join(WORKSPACE_ROLES)}"]
    try:
        email = normalize_email(email)
    except ValueError:
        errors["email"] = ["not an email address"]
    if errors:
        raise Invalid("some invitation details are invalid; see `errors`", errors=errors)
    if role == "owner" and inviter_role != "owner":
        raise Forbidden("only an owner can invite an owner")
    workspace = None
    if workspace_id:
        workspace = db.session.get(Workspace, workspace_id)
        if workspace is None or workspace.organization_id != organization.id:
            raise Invalid("the workspace is not in this organization",
                          errors={"workspace_id": ["not a workspace of this organization"]})
    user = user_by_email(email)
    if user is not None:
        member = add_organization_member(organization, user, role, inviter.id)
        if workspace is not None:
            add_workspace_member(workspace, user, workspace_role)
        db.session.commit()
        return "added", member, None
    invitation, token = invite(organization, email, role, inviter.id, workspace=workspace,
                               workspace_role=workspace_role)
    db.session.commit()
    return "invited", invitation, token


def invite(organization: Organization, email: str, role: str, invited_by_id, *,
           workspace: Workspace | None = None, workspace_role: str | None = None) -> tuple[Invitation, str]:
    """A pending invitation for someone without an account yet; returns it and its token (shown once)."""
    email = normalize_email(email)
    pending = db.session.scalar(sa.select(Invitation).where(
        Invitation.organization_id == organization.id, Invitation.email == email,
        Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None), Invitation.expires_at > now()))
    if pending is not None:
        raise Conflict(f"{email} already has a pending invitation; revoke it to send a new one")
    plans.enforce(organization, "members")
    token = "inv_" + secrets.token_urlsafe(24)
    invitation = Invitation(organization_id=organization.id, email=email, role=role,
                            workspace_id=workspace.id if workspace else None,
                            workspace_role=workspace_role if workspace else None, token_hash=sha256(token),
                            invited_by_id=invited_by_id,
                            expires_at=now() + timedelta(days=current_app.config["INVITATION_DAYS"]))
    db.session.add(invitation)
    db.session.flush()
    return invitation, token


def pending(organization: Organization):
    """A ``select()`` of the organization's invitations not yet accepted, revoked or expired, oldest first."""
    return sa.select(Invitation).where(
        Invitation.organization_id == organization.id, Invitation.accepted_at.is_(None),
        Invitation.revoked_at.is_(None), Invitation.expires_at > now()).order_by(Invitation.created_at, Invitation.id)


def revoke(organization: Organization, invitation_id) -> None:
    """Revoke a pending invitation: its link stops working. Commits."""
    invitation = db.session.get(Invitation, invitation_id)
    if invitation is None or invitation.organization_id != organization.id or invitation.revoked_at:
        raise NotFound("Invitation not found.")
    if invitation.accepted_at is not None:
        raise Conflict("this invitation was already accepted; remove the member instead")
    invitation.revoked_at = now()
    db.session.commit()


def accept_invitation(token: str, user: User) -> Invitation:
    invitation = db.session.scalar(sa.select(Invitation).where(Invitation.token_hash == sha256(token))
                                   .with_for_update())
    if invitation is None or invitation.revoked_at is not None:
        raise NotFound("this invitation does not exist or was revoked")
    if invitation.accepted_at is not None:
        raise Conflict("this invitation has already been accepted")
    if invitation.expires_at <= now():
        raise Gone("this invitation has expired; ask for a new one")
    if user.email != invitation.email:
        # Whom it was sent to is not said: the link may have reached someone it was not meant for.
        raise Forbidden("this invitation was sent to another email address; sign in with the account it was sent "
                        "to, or ask for an invitation of your own")
    organization = db.session.get(Organization, invitation.organization_id)
    if organization_member(organization.id, user.id) is None:
        # The pending invitation already counts against the plan, so no limit check here.
        db.session.add(OrganizationMember(organization_id=organization.id, user_id=user.id, role=invitation.role,
                                          invited_by_id=invitation.invited_by_id))
    if invitation.workspace_id and workspace_member(invitation.workspace_id, user.id) is None:
        db.session.add(WorkspaceMember(workspace_id=invitation.workspace_id, user_id=user.id,
                                       role=invitation.workspace_role or "viewer"))
    invitation.accepted_at = now()
    db.session.commit()
    return invitation
