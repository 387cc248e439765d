"""``/team``: the organization's members and their roles, inviting people, pending invitations, ownership transfer,
leaving, and renaming or deleting the organization.

Inviting someone who has an account adds them at once; anyone else gets an invitation whose link is shown once, on
the page that answers the invitation, to copy and send them (nothing is emailed). The link opens
``/invitations/<token>`` (``privex.web.auth``), where they sign up or in with the invited email and accept.
A refused action (the last owner leaving, an admin changing an owner) is said at the top of this page, with the
service's status.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import render_template, request
from flask_login import current_user
from sqlalchemy.orm import selectinload
from wtforms import EmailField, SelectField, StringField

from privex.extensions import db
from privex.models import Invitation, OrganizationMember, User, Workspace
from privex.services import invitations
from privex.services import organizations as service
from privex.services.errors import ServiceError
from privex.urls import public_url
from privex.web.forms import PageForm, form_status, show_errors
from privex.web import shell
from privex.web.team import bp, common

ROLE_ORDER = sa.case({"owner": 0, "admin": 1, "member": 2}, value=OrganizationMember.role)


class InviteForm(PageForm):
    email = EmailField("Email", description="Someone with an account here is added at once; anyone else gets a "
                                            "link for you to copy and send them. Nothing is emailed.")
    role = SelectField("Role in the organization", default="member", validate_choice=False)
    workspace_id = SelectField("Also add them to a workspace", default="", validate_choice=False)
    workspace_role = SelectField("Their role in that workspace", default="viewer", validate_choice=False,
                                 choices=common.choices((role, role.title()) for role in common.WORKSPACE_ROLES))


class OrganizationForm(PageForm):
    name = StringField("Organization name")


def invite_form(organization, formdata=None) -> InviteForm:
    form = InviteForm(formdata=formdata)
    offered = ("owner", "admin", "member") if common.organization_role() == "owner" else ("admin", "member")
    form.role.choices = common.choices((role, role.title()) for role in offered)
    form.workspace_id.choices = common.choices([("", "No, the organization only")] + [
        (str(workspace.id), workspace.name) for workspace in db.session.scalars(
            sa.select(Workspace).where(Workspace.organization_id == organization.id)
            .order_by(Workspace.is_default.desc(), Workspace.name))])
    return form


def render(*, invite: InviteForm | None = None, rename: OrganizationForm | None = None, problem: str | None = None,
           new_invitation: dict | None = None) -> str:
    organization = common.organization("org.members.read")
    members = common.listing(
        sa.select(OrganizationMember).where(OrganizationMember.organization_id == organization.id)
        .options(selectinload(OrganizationMember.user).selectinload(User.identities))
        .order_by(ROLE_ORDER, OrganizationMember.created_at, OrganizationMember.id), per_page=25)
    pending = None
    if common.may("org.members.invite"):
        pending = shell.paginate(invitations.pending(organization), 20, argument="invitations")
    workspace_names = dict(db.session.execute(sa.select(Workspace.id, Workspace.name).where(
        Workspace.organization_id == organization.id)).all())
    owners = db.session.scalar(sa.select(sa.func.count()).where(
        OrganizationMember.organization_id == organization.id, OrganizationMember.role == "owner"))
    return render_template(
        "team/members.html", organization=organization, my_role=common.organization_role(), members=members,
        pending=pending, workspace_names=workspace_names, last_owner=common.organization_role() == "owner"
        and owners == 1, invite=invite or invite_form(organization),
        rename=rename or OrganizationForm(formdata=None, name=organization.name), problem=problem,
        new_invitation=new_invitation, roles=common.ORGANIZATION_ROLES, person=common.person)


@bp.get("")
def index():
    return render()


@bp.post("/invite")
def invite():
    """Invite someone by email: added at once when they have an account, else a link shown this once."""
    organization = common.organization("org.members.invite")
    form = invite_form(organization, request.form)
    if form.validate_on_submit():
        workspace_id = common.as_uuid(form.workspace_id.data)
        if form.workspace_id.data and workspace_id is None:
            form.workspace_id.errors = ["Choose a workspace from the list."]  # not even an id
            return render(invite=form), 422
        with show_errors(form, fields={None: "email"}), common.figures_aside():
            outcome, made, token = invitations.invite_or_add(
                organization, current_user._get_current_object(), common.organization_role(),
                form.email.data or "", form.role.data, workspace_id=workspace_id,
                workspace_role=form.workspace_role.data if workspace_id else "viewer")
            if outcome == "added":
                return common.done(f"{common.person(made.user)} had an account and is now a member of "
                                   f"{organization.name}.", "web.team.index")
            link = {"email": made.email, "url": public_url(f"/invitations/{token}"), "expires_at": made.expires_at}
            return common.secret_page(render(new_invitation=link), 201)
    return render(invite=form), form_status(form)


@bp.post("/invitations/<uuid:invitation_id>/revoke")
def revoke_invitation(invitation_id):
    organization = common.organization("org.members.invite")
    invitation = db.session.get(Invitation, invitation_id)
    email = invitation.email if invitation is not None else ""
    invitations.revoke(organization, invitation_id)  # another organization's: the 404 page
    return common.done(f"The invitation for {email} was revoked: its link no longer works.", "web.team.index")


def member(user_id) -> OrganizationMember:
    """A member of the current organization (anyone else's id: the 404 page)."""
    return service.member_of(common.organization("org.members.read"), user_id)


@bp.post("/members/<uuid:user_id>/role")
def change_role(user_id):
    organization = common.organization("org.members.update")
    target = member(user_id)
    role = request.form.get("role", "")
    try:
        service.change_organization_role(target, role, common.organization_role())
    except ServiceError as error:
        return common.refused(render, error)
    return common.done(f"{common.person(target.user)} is now {article(role)} {role} of {organization.name}.",
                       "web.team.index")


@bp.post("/members/<uuid:user_id>/remove")
def remove(user_id):
    organization = common.organization("org.members.remove")
    target = member(user_id)
    name = common.person(target.user)
    try:
        service.remove_organization_member(target, common.organization_role(), current_user.id)
    except ServiceError as error:
        return common.refused(render, error)
    return common.done(f"{name} was removed from {organization.name} and its workspaces.", "web.team.index")


@bp.post("/members/<uuid:user_id>/transfer")
def transfer(user_id):
    organization = common.organization("org.transfer")
    target = member(user_id)
    try:
        service.transfer_organization(organization, current_user.id, target.user_id)
    except ServiceError as error:
        return common.refused(render, error)
    return common.done(f"{common.person(target.user)} now owns {organization.name}; you stay on as an admin.",
                       "web.team.index")


@bp.post("/leave")
def leave():
    organization = common.organization("org.read")
    me = member(current_user.id)
    try:
        service.remove_organization_member(me, common.organization_role(), current_user.id)
    except ServiceError as error:
        return common.refused(render, error)
    return common.done(f"You left {organization.name}.", "web.home.app")


@bp.post("/organization")
def rename():
    organization = common.organization("org.update")
    form = OrganizationForm()
    if form.validate_on_submit():
        with show_errors(form):
            service.update_organization(organization, {"name": form.name.data or ""})
            return common.done(f"The organization is now called {organization.name}.", "web.team.index")
    return render(rename=form), form_status(form)


@bp.post("/organization/delete")
def delete():
    organization = common.organization("org.delete")
    name = organization.name
    service.delete_organization(organization)
    return common.done(f"{name} was deleted with its workspaces and everything in them.", "web.home.app")


def article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"
