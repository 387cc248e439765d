"""Organizations, workspaces and their members: creation, roles, removal, invitations and ownership transfer.

Callers have already checked permissions (``privex.tenancy.context.require``); these functions keep the invariants
that hold whoever calls them: an organization always has an owner, plan limits hold, invitations are single-use.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from privex.auth.tokens import sha256
from privex.clock import now
from privex.extensions import db
from privex.models import Invitation, Organization, OrganizationMember, User, Workspace, WorkspaceMember
from privex.models.tenancy import SUBSCRIPTION_TIERS, WORKSPACE_ROLES
from privex.services import knowledge, plans
from privex.services.accounts import find_email_identity, normalize_email
from privex.services.errors import Conflict, Forbidden, Gone, Invalid, NotFound


def create_organization(user: User, name: str, *, personal: bool = False,
                        billing_email: str | None = None) -> tuple[Organization, Workspace]:
    """A new organization owned by ``user``, with a default workspace ``user`` administers."""
    check_organization({"name": name, "billing_email": billing_email})
    organization = Organization(name=name, is_personal=personal, created_by_id=user.id,
                                billing_email=billing_email or user.email)
    db.session.add(organization)
    db.session.flush()
    db.session.add(OrganizationMember(organization_id=organization.id, user_id=user.id, role="owner"))
    workspace = add_workspace(organization, user, "Default", is_default=True)
    return organization, workspace


def add_workspace(organization: Organization, user: User, name: str, *, description: str | None = None,
                  is_default: bool = False) -> Workspace:
    check_workspace({"name": name, "description": description})
    if not is_default:
        plans.enforce(organization, "workspaces")
    if db.session.scalar(sa.select(Workspace.id).where(Workspace.organization_id == organization.id,
                                                       Workspace.name == name)):
        raise Conflict(f"a workspace named {name!r} already exists in this organization",
                       errors={"name": ["already used by another workspace of this organization"]})
    workspace = Workspace(organization_id=organization.id, name=name, description=description,
                          is_default=is_default, created_by_id=user.id, owner_id=user.id)
    db.session.add(workspace)
    db.session.flush()
    db.session.add(WorkspaceMember(workspace_id=workspace.id, user_id=user.id, role="admin"))
    db.session.flush()
    return workspace


def organization_member(organization_id, user_id) -> OrganizationMember | None:
    return db.session.scalar(sa.select(OrganizationMember).where(
        OrganizationMember.organization_id == organization_id, OrganizationMember.user_id == user_id))


def workspace_member(workspace_id, user_id) -> WorkspaceMember | None:
    return db.session.scalar(sa.select(WorkspaceMember).where(
        WorkspaceMember.workspace_id == workspace_id, WorkspaceMember.user_id == user_id))


def _owner_count(organization_id) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(OrganizationMember).where(
        OrganizationMember.organization_id == organization_id, OrganizationMember.role == "owner"))


def change_organization_role(member: OrganizationMember, role: str, acting_role: str) -> None:
    if "owner" in (role, member.role) and acting_role != "owner":
        raise Forbidden("only an owner can make someone an owner or change an owner's role")
    if member.role == "owner" and role != "owner" and _owner_count(member.organization_id) == 1:
        raise Conflict("this is the organization's last owner: make someone else owner first")
    member.role = role


def remove_organization_member(member: OrganizationMember, acting_role: str, acting_user_id) -> None:
    leaving = member.user_id == acting_user_id
    if member.role == "owner" and not leaving and acting_role != "owner":
        raise Forbidden("only an owner can remove an owner")
    if member.role == "owner" and _owner_count(member.organization_id) == 1:
        raise Conflict("the last owner cannot leave or be removed: transfer ownership or delete the organization")
    workspace_ids = sa.select(Workspace.id).where(Workspace.organization_id == member.organization_id)
    db.session.execute(sa.delete(WorkspaceMember).where(WorkspaceMember.user_id == member.user_id,
                                                        WorkspaceMember.workspace_id.in_(workspace_ids)))
    db.session.delete(member)


def transfer_organization(organization: Organization, from_user_id, to_user_id) -> None:
    target = organization_member(organization.id, to_user_id)
    if target is None:
        raise Invalid("the new owner must already be a member of the organization",
                      errors={"user_id": ["not a member of this organization"]})
    target.role = "owner"
    current = organization_member(organization.id, from_user_id)
    if current is not None and current.user_id != target.user_id:
        current.role = "admin"


def add_organization_member(organization: Organization, user: User, role: str, invited_by_id) -> OrganizationMember:
    if organization_member(organization.id, user.id) is not None:
        raise Conflict("this user is already a member of the organization")
    # A pending invitation to the same person would hold a second seat: it is fulfilled by this.
    db.session.execute(sa.update(Invitation).where(
        Invitation.organization_id == organization.id, Invitation.email == user.email,
        Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None)).values(accepted_at=now()))
    plans.enforce(organization, "members")
    member = OrganizationMember(organization_id=organization.id, user_id=user.id, role=role,
                                invited_by_id=invited_by_id)
    db.session.add(member)
    db.session.flush()
    return member


def add_workspace_member(workspace: Workspace, user: User, role: str) -> WorkspaceMember:
    if workspace_member(workspace.id, user.id) is not None:
        raise Conflict("this user is already a member of the workspace")
    member = WorkspaceMember(workspace_id=workspace.id, user_id=user.id, role=role)
    db.session.add(member)
    db.session.flush()
    return member


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


def user_by_email(email: str) -> User | None:
    identity = find_email_identity(normalize_email(email))
    return identity.user if identity else None


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
    db.session.flush()
    return invitation


def default_context(user_id) -> tuple[uuid.UUID | None, uuid.UUID | None]:
    """Where a fresh sign-in lands: the user's oldest organization and its first workspace they can open."""
    member = db.session.scalar(sa.select(OrganizationMember).where(OrganizationMember.user_id == user_id)
                               .order_by(OrganizationMember.created_at, OrganizationMember.id).limit(1))
    if member is None:
        return None, None
    return member.organization_id, first_workspace(member.organization_id, user_id, member.role)


def first_workspace(organization_id, user_id, org_role: str) -> uuid.UUID | None:
    query = sa.select(Workspace.id).where(Workspace.organization_id == organization_id)
    if org_role not in ("owner", "admin"):
        query = query.join(WorkspaceMember, WorkspaceMember.workspace_id == Workspace.id).where(
            WorkspaceMember.user_id == user_id)
    return db.session.scalar(query.order_by(Workspace.is_default.desc(), Workspace.created_at).limit(1))


def check_organization(changes: dict) -> dict:
    """Name, billing email and plan tier as every front end must give them; returns them with the email
    normalized."""
    errors = {}
    if "name" in changes and (not isinstance(changes["name"], str) or not changes["name"].strip()
                              or len(changes["name"]) > 120):
        errors["name"] = ["give a name of 1 to 120 characters"]
    if changes.get("billing_email") is not None:
        try:
            changes = {**changes, "billing_email": normalize_email(str(changes["billing_email"]))}
        except ValueError:
            errors["billing_email"] = ["not an email address"]
    if "subscription_tier" in changes and changes["subscription_tier"] not in SUBSCRIPTION_TIERS:
        errors["subscription_tier"] = [f"one of {', '.join(SUBSCRIPTION_TIERS)}"]
    if errors:
        raise Invalid("some organization details are invalid; see `errors`", errors=errors)
    return changes


def update_organization(organization: Organization, changes: dict) -> Organization:
    """Rename an organization, or change its billing email or plan tier (callers let only a platform operator
    change the tier)."""
    changes = check_organization(changes)
    for key in ("name", "billing_email", "subscription_tier"):
        if key in changes:
            setattr(organization, key, changes[key])
    db.session.flush()
    return organization


def check_workspace(changes: dict) -> None:
    errors = {}
    if "name" in changes and (not isinstance(changes["name"], str) or not changes["name"].strip()
                              or len(changes["name"]) > 120):
        errors["name"] = ["give a name of 1 to 120 characters"]
    if changes.get("description") is not None and (not isinstance(changes["description"], str)
                                                   or len(changes["description"]) > 2000):
        errors["description"] = ["at most 2000 characters"]
    if errors:
        raise Invalid("some workspace details are invalid; see `errors`", errors=errors)


def update_workspace(workspace: Workspace, changes: dict) -> Workspace:
    """Rename or describe a workspace; its name is unique within the organization."""
    check_workspace(changes)
    if "name" in changes and changes["name"] != workspace.name and db.session.scalar(sa.select(Workspace.id).where(
            Workspace.organization_id == workspace.organization_id, Workspace.name == changes["name"])):
        raise Conflict(f"a workspace named {changes['name']!r} already exists in this organization",
                       errors={"name": ["already used by another workspace of this organization"]})
    for key in ("name", "description"):
        if key in changes:
            setattr(workspace, key, changes[key])
    db.session.flush()
    return workspace


def change_workspace_role(member: WorkspaceMember, role: str) -> None:
    if role not in WORKSPACE_ROLES:
        raise Invalid(f"role must be one of {', '.join(WORKSPACE_ROLES)}", errors={"role": ["not a workspace role"]})
    member.role = role


def remove_workspace_member(member: WorkspaceMember) -> None:
    db.session.delete(member)


def delete_workspace(workspace: Workspace) -> None:
    """Delete a workspace with every resource in it, its knowledge bases' vectors and files included (not the
    organization's last workspace). Commits."""
    remaining = db.session.scalar(sa.select(sa.func.count()).select_from(Workspace).where(
        Workspace.organization_id == workspace.organization_id))
    if remaining == 1:
        raise Conflict("an organization keeps at least one workspace; delete the organization instead")
    folders = knowledge.clear_workspaces([workspace.id])
    db.session.execute(sa.delete(Workspace).where(Workspace.id == workspace.id))
    db.session.commit()
    knowledge.remove_folders(folders)


def delete_organization(organization: Organization) -> None:
    """Delete an organization with every workspace and resource in it, knowledge bases' vectors and files included.
    Commits."""
    workspace_ids = db.session.scalars(sa.select(Workspace.id).where(Workspace.organization_id == organization.id))
    folders = knowledge.clear_workspaces(workspace_ids)
    db.session.execute(sa.delete(Organization).where(Organization.id == organization.id))
    db.session.commit()
    knowledge.remove_folders(folders)
