"""Workspaces and their members: creating, renaming and deleting a workspace, adding members of its organization,
their roles, handing the workspace over; and which workspace a sign-in lands in.

Callers have checked permissions (``privex.tenancy.context.require``); these functions keep what holds whoever calls
them: names unique in an organization, plan limits, an organization never without a workspace, members of a
workspace first members of its organization.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from privex.extensions import db
from privex.models import Organization, OrganizationMember, User, Workspace, WorkspaceMember
from privex.models.tenancy import WORKSPACE_ROLES
from privex.services import knowledge, plans
from privex.services.accounts import find_email_identity, normalize_email
from privex.services.errors import Conflict, Invalid, NotFound
from privex.services.fields import check_name, check_text


def check_details(changes: dict) -> None:
    errors = {}
    check_name(changes, errors)
    check_text(changes, errors, "description")
    if "settings" in changes and not isinstance(changes["settings"], dict):
        errors["settings"] = ["must be an object"]
    if errors:
        raise Invalid("some workspace details are invalid; see `errors`", errors=errors)


def _refuse_taken_name(organization_id, name: str) -> None:
    if db.session.scalar(sa.select(Workspace.id).where(Workspace.organization_id == organization_id,
                                                       Workspace.name == name)):
        raise Conflict(f"a workspace named {name!r} already exists in this organization",
                       errors={"name": ["already used by another workspace of this organization"]})


def add_workspace(organization: Organization, user: User, name: str, *, description: str | None = None,
                  settings: dict | None = None, is_default: bool = False) -> Workspace:
    """A new workspace of ``organization`` that ``user`` owns and administers (within the plan's limit); flushed."""
    check_details({"name": name, "description": description, **({"settings": settings} if settings is not None
                                                                   else {})})
    if not is_default:
        plans.enforce(organization, "workspaces")
    _refuse_taken_name(organization.id, name)
    workspace = Workspace(organization_id=organization.id, name=name, description=description,
                          settings=settings or {}, is_default=is_default, created_by_id=user.id, owner_id=user.id)
    db.session.add(workspace)
    db.session.flush()
    db.session.add(WorkspaceMember(workspace_id=workspace.id, user_id=user.id, role="admin"))
    db.session.flush()
    return workspace


def update_workspace(workspace: Workspace, changes: dict) -> Workspace:
    """Rename or describe a workspace, or replace its settings. Commits."""
    check_details(changes)
    if "name" in changes and changes["name"] != workspace.name:
        _refuse_taken_name(workspace.organization_id, changes["name"])
    for key in ("name", "description", "settings"):
        if key in changes:
            setattr(workspace, key, changes[key])
    db.session.commit()
    return workspace


def delete_workspace(workspace: Workspace) -> None:
    """Delete a workspace with every resource in it, its knowledge bases' vectors and files included; an
    organization keeps at least one. Commits."""
    remaining = db.session.scalar(sa.select(sa.func.count()).select_from(Workspace).where(
        Workspace.organization_id == workspace.organization_id))
    if remaining == 1:
        raise Conflict("an organization keeps at least one workspace; delete the organization instead")
    folders = knowledge.clear_workspaces([workspace.id])
    db.session.execute(sa.delete(Workspace).where(Workspace.id == workspace.id))
    db.session.commit()
    knowledge.remove_folders(folders)


def workspace_member(workspace_id, user_id) -> WorkspaceMember | None:
    return db.session.scalar(sa.select(WorkspaceMember).where(
        WorkspaceMember.workspace_id == workspace_id, WorkspaceMember.user_id == user_id))


def add_workspace_member(workspace: Workspace, user: User, role: str) -> WorkspaceMember:
    if role not in WORKSPACE_ROLES:
        raise Invalid(f"a workspace role is one of {', '.join(WORKSPACE_ROLES)}", errors={"role": ["unknown role"]})
    if workspace_member(workspace.id, user.id) is not None:
        raise Conflict("this user is already a member of the workspace")
    member = WorkspaceMember(workspace_id=workspace.id, user_id=user.id, role=role)
    db.session.add(member)
    db.session.flush()
    return member


def _in_organization(organization_id, user_id) -> bool:
    return db.session.scalar(sa.select(OrganizationMember.id).where(
        OrganizationMember.organization_id == organization_id, OrganizationMember.user_id == user_id)) is not None


def add_member(workspace: Workspace, *, role: str, user_id=None, email: str | None = None) -> WorkspaceMember:
    """Add a member of the workspace's organization, found by id or email. Commits."""
    user = db.session.get(User, user_id) if user_id else user_by_email(email or "")
    if user is None or not _in_organization(workspace.organization_id, user.id):
        raise Invalid("add members of the organization only: invite this person to the organization first "
                      "(POST /orgs/{org_id}/members with workspace_id)",
                      errors={"user_id" if user_id else "email": ["not a member of the organization"]})
    member = add_workspace_member(workspace, user, role)
    db.session.commit()
    return member


def member_of(workspace: Workspace, user_id) -> WorkspaceMember:
    member = workspace_member(workspace.id, user_id)
    if member is None:
        raise NotFound("Member not found.")
    return member


def change_role(workspace: Workspace, user_id, role: str) -> WorkspaceMember:
    """A member's new workspace role. No last-admin rule: the organization's owners and admins administer every
    workspace. Commits."""
    if role not in WORKSPACE_ROLES:
        raise Invalid(f"a workspace role is one of {', '.join(WORKSPACE_ROLES)}", errors={"role": ["unknown role"]})
    member = member_of(workspace, user_id)
    member.role = role
    db.session.commit()
    return member


def remove_member(workspace: Workspace, user_id) -> None:
    db.session.delete(member_of(workspace, user_id))
    db.session.commit()


def add_person(workspace: Workspace, user: User, role: str, added_by_id) -> WorkspaceMember:
    """Put ``user`` in the workspace, making them a member of its organization first if they are not (what an
    operator does in the back office; the API adds organization members only). Commits."""
    from privex.services.organizations import add_organization_member

    if not _in_organization(workspace.organization_id, user.id):
        add_organization_member(db.session.get(Organization, workspace.organization_id), user, "member",
                                added_by_id)
    member = add_workspace_member(workspace, user, role)
    db.session.commit()
    return member


def transfer(workspace: Workspace, user_id) -> Workspace:
    """Hand the workspace to another member of the organization: they become its owner and an admin. Commits."""
    if not _in_organization(workspace.organization_id, user_id):
        raise Invalid("the new owner must be a member of the organization",
                      errors={"user_id": ["not a member of this organization"]})
    member = workspace_member(workspace.id, user_id)
    if member is None:
        db.session.add(WorkspaceMember(workspace_id=workspace.id, user_id=user_id, role="admin"))
    else:
        member.role = "admin"
    workspace.owner_id = user_id
    db.session.commit()
    return workspace


def user_by_email(email: str) -> User | None:
    identity = find_email_identity(normalize_email(email))
    return identity.user if identity else None


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
