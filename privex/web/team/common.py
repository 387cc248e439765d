"""What the Team pages share: refusals in plain words, paginated lists, and answering a refused action on the page
that offered it (its message at the top, the service error's status) rather than on an error page."""

from __future__ import annotations

import uuid
from contextlib import contextmanager

from flask import flash, redirect, url_for
from wtforms.fields.choices import SelectChoice

from privex.extensions import db
from privex.models import Organization, User, Workspace
from privex.services.errors import Forbidden, PlanLimit, ServiceError
from privex.statuses import status_of
from privex.tenancy.context import caller, require
from privex.web import shell
from privex.web.forms import form_status

# The permission table names actions for developers (`api_keys.read`); the person in front of the page is told who
# may do it instead.
REFUSALS = {
    "org.members.invite": "only owners and admins of the organization invite people and see pending invitations",
    "org.members.update": "only owners and admins of the organization change members' roles",
    "org.members.remove": "only owners and admins of the organization remove members",
    "org.transfer": "only an owner of the organization hands its ownership over",
    "org.update": "only owners and admins of the organization rename it",
    "org.delete": "only an owner of the organization deletes it",
    "org.billing.read": "only owners and admins of the organization see its plan and usage",
    "org.billing.update": "only an owner of the organization changes its billing email",
    "workspace.create": "only owners and admins of the organization create workspaces",
    "workspace.update": "only admins of this workspace rename it",
    "workspace.delete": "only admins of this workspace delete it",
    "workspace.members.invite": "only admins of this workspace add people to it",
    "workspace.members.update": "only admins of this workspace change its members' roles",
    "workspace.members.remove": "only admins of this workspace remove its members",
    "api_keys.read": "only admins of this workspace see and make its API keys",
    "api_keys.create": "only admins of this workspace make API keys",
    "api_keys.revoke": "only admins of this workspace revoke API keys",
    "resources.write": "viewers look but change nothing: an editor or admin of this workspace manages its credentials",
}

ORGANIZATION_ROLES = {
    "owner": "Everything, including the plan, making owners and deleting the organization.",
    "admin": "Invites people, manages every workspace and its API keys and content.",
    "member": "Works in the workspaces they are added to, with the role they have there.",
}
WORKSPACE_ROLES = {
    "admin": "Manages the workspace, its members and its API keys.",
    "editor": "Builds knowledge bases and chatbots, and manages credentials.",
    "viewer": "Looks at everything, changes nothing.",
}


@contextmanager
def plainly(action: str):
    """A refusal of ``action`` says who may do it."""
    try:
        yield
    except Forbidden as error:
        raise Forbidden(REFUSALS.get(action, error.message), errors=error.errors) from None


@contextmanager
def figures_aside():
    """A plan's limit said in its message alone: its ``errors`` are figures (limit, used, plan), not fields."""
    try:
        yield
    except PlanLimit as error:
        raise PlanLimit(error.message) from None


may = shell.may


def organization(action: str = "org.members.read") -> Organization:
    """The current organization once ``action`` is allowed there (the 403 page, in plain words, otherwise)."""
    with plainly(action):
        return shell.organization_for(action)


def workspace(action: str = "resources.read") -> Workspace:
    """The current workspace once ``action`` is allowed there."""
    with plainly(action):
        return shell.workspace_for(action)


def allow(action: str, on: Workspace) -> None:
    """``action`` on a workspace of the current organization (not necessarily the one worked in)."""
    with plainly(action):
        require(action, workspace=on)


def may_on(action: str, on: Workspace) -> bool:
    """Whether ``action`` is allowed on that workspace (for templates: hide what the person cannot do)."""
    return caller().may(action, workspace=on)


def organization_role() -> str | None:
    place = shell.here()
    return place.organization_role if place else None


def listing(statement, per_page: int = 20):
    """One page of ``statement``'s rows (``?page=N``; a page past the end is empty, never an error)."""
    return shell.paginate(statement, per_page)


def refused(render, error: ServiceError, **context):
    """The page again with the service's refusal at the top, answered with its status."""
    db.session.rollback()
    return render(problem=error.message, **context), status_of(error)


def refusal_status(form) -> int:
    """The status of a form sent back with errors: the service's, else 422 (also for errors the view found itself
    after validation, which ``form_status`` cannot see on sub-forms)."""
    status = form_status(form)
    return status if status != 200 else 422


def done(message: str, endpoint: str, **values):
    """After a change: say what happened on the page that lists it (303: the browser GETs it)."""
    flash(message, "success")
    return redirect(url_for(endpoint, **values), 303)


def secret_page(response, status: int):
    """A page showing a secret once (a new key, an invitation's link): never kept by a cache or the back button."""
    return response, status, {"Cache-Control": "no-store"}


def choices(pairs) -> list[SelectChoice]:
    """Select options from ``(value, label)`` pairs."""
    return [SelectChoice(value, label) for value, label in pairs]


def as_uuid(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def person(user: User | None) -> str:
    """How the pages name someone: their name, else their email, else their username (a wallet's account)."""
    if user is None:
        return "someone no longer here"
    return user.display_name or user.email or user.username

