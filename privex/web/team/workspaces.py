"""``/team/workspaces``: the organization's workspaces (those the signed-in person can open), creating one, and a
workspace's page: its name and description, its members and their roles, adding a member of the organization,
deleting it.

Any workspace of the current organization can be managed here, not only the one worked in; one of another
organization (or one the person cannot open) is the 404 page, as on the API. An organization's owners and admins
administer every workspace whether they are listed as its members or not, as the permission table says.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import render_template, request
from flask_login import current_user
from sqlalchemy.orm import selectinload
from wtforms import SelectField, StringField, TextAreaField

from privex.extensions import db
from privex.models import OrganizationMember, User, Workspace, WorkspaceMember
from privex.services import workspaces as service
from privex.services.errors import NotFound, ServiceError
from privex.tenancy.permissions import effective_workspace_role
from privex.web.forms import PageForm, form_status, show_errors
from privex.web.shell import here
from privex.web.team import bp, common

ROLE_ORDER = sa.case({"admin": 0, "editor": 1, "viewer": 2}, value=WorkspaceMember.role)


class WorkspaceForm(PageForm):
    name = StringField("Name", description="Unique in the organization, e.g. Support or Marketing.")
    description = TextAreaField("Description", description="Optional: what this workspace is for.")


class AddMemberForm(PageForm):
    user_id = SelectField("Person", validate_choice=False,
                          description="Members of the organization who are not in this workspace yet.")
    role = SelectField("Role in this workspace", default="viewer", validate_choice=False,
                       choices=common.choices((role, role.title()) for role in common.WORKSPACE_ROLES))


def opened(organization):
    """The organization's workspaces this person can open (all of them for its owners and admins)."""
    statement = sa.select(Workspace).where(Workspace.organization_id == organization.id)
    if common.organization_role() not in ("owner", "admin"):
        statement = statement.where(Workspace.id.in_(sa.select(WorkspaceMember.workspace_id).where(
            WorkspaceMember.user_id == current_user.id)))
    return statement.order_by(Workspace.is_default.desc(), Workspace.name, Workspace.id)


def render_list(*, create: WorkspaceForm | None = None, problem: str | None = None) -> str:
    organization = common.organization("org.read")
    page = common.listing(opened(organization))
    ids = [workspace.id for workspace in page.items]
    own = dict(db.session.execute(sa.select(WorkspaceMember.workspace_id, WorkspaceMember.role).where(
        WorkspaceMember.user_id == current_user.id, WorkspaceMember.workspace_id.in_(ids))).all())
    counts = dict(db.session.execute(sa.select(WorkspaceMember.workspace_id, sa.func.count()).where(
        WorkspaceMember.workspace_id.in_(ids)).group_by(WorkspaceMember.workspace_id)).all())
    rows = [(workspace, effective_workspace_role(common.organization_role(), own.get(workspace.id)),
             counts.get(workspace.id, 0)) for workspace in page.items]
    return render_template("team/workspaces.html", organization=organization, page=page, rows=rows,
                           create=create or WorkspaceForm(formdata=None), problem=problem, current=here().workspace)


@bp.get("/workspaces")
def workspaces():
    return render_list()


@bp.post("/workspaces")
def create():
    organization = common.organization("workspace.create")
    form = WorkspaceForm()
    if form.validate_on_submit():
        with show_errors(form), common.figures_aside():
            workspace = service.add_workspace(organization, current_user._get_current_object(), form.name.data or "",
                                              description=form.description.data or None)
            db.session.commit()
            return common.done(f"The workspace {workspace.name} was created; you are its admin.",
                               "web.team.workspace", ws_id=workspace.id)
    return render_list(create=form), form_status(form)


# -- one workspace -------------------------------------------------------------------------------------------------

def of_organization(ws_id, action: str = "workspace.read") -> Workspace:
    """A workspace of the current organization the person can open, once ``action`` is allowed on it."""
    organization = common.organization("org.read")
    workspace = db.session.get(Workspace, ws_id)
    if workspace is None or workspace.organization_id != organization.id:
        raise NotFound("Workspace not found.")
    common.allow(action, workspace)
    return workspace


def addable(workspace: Workspace) -> list:
    """Members of the organization not in the workspace yet, as select choices (its owners and admins are left
    out: they manage every workspace already, whatever role one would give them here)."""
    inside = sa.select(WorkspaceMember.user_id).where(WorkspaceMember.workspace_id == workspace.id)
    members = db.session.scalars(sa.select(OrganizationMember).where(
        OrganizationMember.organization_id == workspace.organization_id, OrganizationMember.role == "member",
        OrganizationMember.user_id.not_in(inside))
        .options(selectinload(OrganizationMember.user).selectinload(User.identities))
        .order_by(OrganizationMember.created_at).limit(500))
    return common.choices((str(member.user_id), common.person(member.user)) for member in members)


def render_one(workspace: Workspace, *, details: WorkspaceForm | None = None, add: AddMemberForm | None = None,
               problem: str | None = None) -> str:
    members = common.listing(
        sa.select(WorkspaceMember).where(WorkspaceMember.workspace_id == workspace.id)
        .options(selectinload(WorkspaceMember.user).selectinload(User.identities))
        .order_by(ROLE_ORDER, WorkspaceMember.created_at, WorkspaceMember.id), per_page=50)
    if add is None:
        add = AddMemberForm(formdata=None)
    add.user_id.choices = addable(workspace) if common.may_on("workspace.members.invite", workspace) else []
    place = here()
    return render_template(
        "team/workspace.html", workspace=workspace, members=members,
        details=details or WorkspaceForm(formdata=None, obj=workspace), add=add, problem=problem,
        may_on=lambda action: common.may_on(action, workspace), person=common.person,
        roles=common.WORKSPACE_ROLES, is_current=place.workspace is not None and place.workspace.id == workspace.id)


@bp.get("/workspaces/<uuid:ws_id>")
def workspace(ws_id):
    return render_one(of_organization(ws_id))


@bp.post("/workspaces/<uuid:ws_id>")
def update(ws_id):
    found = of_organization(ws_id, "workspace.update")
    form = WorkspaceForm()
    if form.validate_on_submit():
        with show_errors(form):
            service.update_workspace(found, {"name": form.name.data or "",
                                             "description": form.description.data or None})
            return common.done("The workspace's details were saved.", "web.team.workspace", ws_id=found.id)
    return render_one(found, details=form), form_status(form)


@bp.post("/workspaces/<uuid:ws_id>/delete")
def delete_workspace(ws_id):
    found = of_organization(ws_id, "workspace.delete")
    name = found.name
    try:
        service.delete_workspace(found)
    except ServiceError as error:
        return common.refused(lambda **context: render_one(found, **context), error)
    return common.done(f"The workspace {name} was deleted with everything in it.", "web.team.workspaces")


@bp.post("/workspaces/<uuid:ws_id>/members")
def add_member(ws_id):
    found = of_organization(ws_id, "workspace.members.invite")
    form = AddMemberForm()
    form.user_id.choices = addable(found)
    if form.validate_on_submit():
        if common.as_uuid(form.user_id.data) is None:
            form.user_id.errors = ["Choose a person from the list."]
            return render_one(found, add=form), 422
        with show_errors(form):
            added = service.add_member(found, role=form.role.data, user_id=common.as_uuid(form.user_id.data))
            return common.done(f"{common.person(added.user)} was added to {found.name} as {added.role}.",
                               "web.team.workspace", ws_id=found.id)
    return render_one(found, add=form), form_status(form)


def workspace_member(workspace: Workspace, user_id) -> WorkspaceMember:
    return service.member_of(workspace, user_id)  # not a member of it: the 404 page


@bp.post("/workspaces/<uuid:ws_id>/members/<uuid:user_id>/role")
def change_member_role(ws_id, user_id):
    found = of_organization(ws_id, "workspace.members.update")
    target = workspace_member(found, user_id)
    role = request.form.get("role", "")
    try:
        service.change_role(found, target.user_id, role)
    except ServiceError as error:
        return common.refused(lambda **context: render_one(found, **context), error)
    return common.done(f"{common.person(target.user)} is now {role} of {found.name}.", "web.team.workspace",
                       ws_id=found.id)


@bp.post("/workspaces/<uuid:ws_id>/members/<uuid:user_id>/remove")
def remove_member(ws_id, user_id):
    leaving = user_id == current_user.id
    found = of_organization(ws_id, "workspace.read" if leaving else "workspace.members.remove")
    target = workspace_member(found, user_id)
    name = common.person(target.user)
    service.remove_member(found, target.user_id)
    if leaving:
        return common.done(f"You left the workspace {found.name}.", "web.team.workspaces")
    return common.done(f"{name} was removed from {found.name}.", "web.team.workspace", ws_id=found.id)
