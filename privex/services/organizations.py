"""Organizations and their members: creation, renaming, deletion, roles, removal, ownership transfer and billing.
Workspaces are ``privex.services.workspaces``, invitations ``privex.services.invitations``.

Callers have already checked permissions (``privex.tenancy.context.require``); these functions keep the invariants
that hold whoever calls them: an organization always has an owner, plan limits hold.
"""

from __future__ import annotations

import sqlalchemy as sa

from privex.clock import now
from privex.extensions import db
from privex.models import Invitation, Organization, OrganizationMember, User, Workspace, WorkspaceMember
from privex.models.tenancy import ORGANIZATION_ROLES, SUBSCRIPTION_TIERS
from privex.services import knowledge, plans
from privex.services.accounts import normalize_email
from privex.services.errors import Conflict, Forbidden, Invalid, NotFound
from privex.services.fields import check_name
from privex.services.workspaces import add_workspace


def create_organization(user: User, name: str, *, personal: bool = False,
                        billing_email: str | None = None) -> tuple[Organization, Workspace]:
    """A new organization owned by ``user``, with a default workspace ``user`` administers; flushed."""
    billing_email = check_organization({"name": name, "billing_email": billing_email})["billing_email"]
    organization = Organization(name=name, is_personal=personal, created_by_id=user.id,
                                billing_email=billing_email or user.email)
    db.session.add(organization)
    db.session.flush()
    db.session.add(OrganizationMember(organization_id=organization.id, user_id=user.id, role="owner"))
    workspace = add_workspace(organization, user, "Default", is_default=True)
    return organization, workspace


def organization_member(organization_id, user_id) -> OrganizationMember | None:
    return db.session.scalar(sa.select(OrganizationMember).where(
        OrganizationMember.organization_id == organization_id, OrganizationMember.user_id == user_id))


def _owner_count(organization_id) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(OrganizationMember).where(
        OrganizationMember.organization_id == organization_id, OrganizationMember.role == "owner"))


def check_organization(changes: dict) -> dict:
    """Name, billing email and plan tier as every front end must give them; returns them with the email
    normalized."""
    errors = {}
    check_name(changes, errors)
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
    change the tier). Commits."""
    changes = check_organization(changes)
    for key in ("name", "billing_email", "subscription_tier"):
        if key in changes:
            setattr(organization, key, changes[key])
    db.session.commit()
    return organization


def delete_organization(organization: Organization) -> None:
    """Delete an organization with every workspace and resource in it, its knowledge bases' vectors and files
    included. Commits."""
    workspace_ids = db.session.scalars(sa.select(Workspace.id).where(Workspace.organization_id == organization.id))
    folders = knowledge.clear_workspaces(workspace_ids)
    db.session.execute(sa.delete(Organization).where(Organization.id == organization.id))
    db.session.commit()
    knowledge.remove_folders(folders)


def member_of(organization: Organization, user_id) -> OrganizationMember:
    member = organization_member(organization.id, user_id)
    if member is None:
        raise NotFound("Member not found.")
    return member


def update_billing(organization: Organization, changes: dict, *, by_operator: bool) -> Organization:
    """Change the billing email; the plan tier only a platform operator changes. Commits."""
    if changes.get("subscription_tier", organization.subscription_tier) != organization.subscription_tier and (
            not by_operator):
        raise Forbidden("plan changes are made by the platform operator")
    return update_organization(organization, {key: changes[key] for key in ("subscription_tier", "billing_email")
                                              if key in changes})


def change_organization_role(member: OrganizationMember, role: str, acting_role: str) -> None:
    if role not in ORGANIZATION_ROLES:
        raise Invalid(f"an organization role is one of {', '.join(ORGANIZATION_ROLES)}",
                      errors={"role": ["unknown role"]})
    if "owner" in (role, member.role) and acting_role != "owner":
        raise Forbidden("only an owner can make someone an owner or change an owner's role")
    if member.role == "owner" and role != "owner" and _owner_count(member.organization_id) == 1:
        raise Conflict("this is the organization's last owner: make someone else owner first")
    member.role = role
    db.session.commit()


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
    db.session.commit()


def transfer_organization(organization: Organization, from_user_id, to_user_id) -> None:
    target = organization_member(organization.id, to_user_id)
    if target is None:
        raise Invalid("the new owner must already be a member of the organization",
                      errors={"user_id": ["not a member of this organization"]})
    target.role = "owner"
    current = organization_member(organization.id, from_user_id)
    if current is not None and current.user_id != target.user_id:
        current.role = "admin"
    db.session.commit()


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


