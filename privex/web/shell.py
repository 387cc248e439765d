"""The shell every page of the builder lives in: who is signed in, in which organization and workspace, what they
may do there, and the navigation.

- **Sign-in gate.** Every page under ``privex.web`` needs a signed-in person; anyone else is sent to
  ``/login?next=<the page>`` (an HTMX request gets ``HX-Redirect`` instead, so the whole page goes). Mark the few
  pages open to everyone with ``@public_page``.
- **Context.** The organization and workspace someone works in are kept in their session (``organization_id``,
  ``workspace_id``), chosen by the switcher in the header (a POST form) and defaulting as an API sign-in does
  (``workspaces.default_context``). ``here()`` answers them for this request, checked again on every request (a
  member removed from a workspace falls back to one they still have).
- **Permissions.** The pages' caller is made the request's ``tenancy.context`` caller, so the one permission table
  (``tenancy/permissions.py``) decides for pages exactly as for the API:

  ``workspace_for(action="resources.read") -> Workspace``
      the current workspace once ``action`` is allowed there; a viewer asking for ``resources.write`` gets the 403
      page (``Forbidden``), someone with no workspace the 409 page.
  ``organization_for(action="org.read") -> Organization``
      the same for organization-level actions (``org.members.invite``, ...).
  ``resource_or_404(Model, id, action="resources.read")``
      a row of the current workspace (another tenant's id, or another workspace's, is the 404 page).
  ``scoped(Model)`` (re-exported from ``tenancy.context``)
      ``select(Model)`` limited to the current workspace, for lists.
  ``may(action) -> bool``
      for templates too: ``{% if may("resources.write") %}`` hides what a viewer cannot do.
- **Navigation.** ``NavEntry`` values, one per area (its module's ``NAV``), shown in the header in ``order``.

What does not live here: forms and their errors (``privex.web.forms``), the error pages (``privex.web.errors``).
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass, field

import sqlalchemy as sa
from flask import current_app, redirect, request, session, url_for
from flask_login import current_user
from htmx_flask import make_response as htmx_response

from privex.extensions import db
from privex.models import Organization, OrganizationMember, Workspace, WorkspaceMember
from privex.services import workspaces
from privex.services.errors import Conflict, NotFound
from privex.tenancy.context import Caller, act_as, get_scoped_or_404, require, scoped
from privex.tenancy.permissions import allows, effective_workspace_role

__all__ = ["NavEntry", "Place", "here", "may", "organization_for", "public_page", "resource_or_404", "scoped",
           "workspace_for"]

SESSION_ORGANIZATION = "organization_id"
SESSION_WORKSPACE = "workspace_id"
PLACE_KEY = "privex.place"


# -- navigation ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class NavEntry:
    """One link of the header's navigation: ``label``, the ``endpoint`` it opens, and where it sits (``order``,
    small first). It is marked current on every path under ``prefix`` (the endpoint's own path by default)."""

    label: str
    endpoint: str
    order: int = 50
    prefix: str | None = None

    def url(self) -> str:
        return url_for(self.endpoint)

    def is_current(self) -> bool:
        prefix = self.prefix or self.url()
        return request.path == prefix or request.path.startswith(prefix.rstrip("/") + "/")


def add_nav(app, entry: NavEntry) -> None:
    """Show ``entry`` in the header of ``app`` (areas' ``NAV`` are added by ``privex.web.init_web``; a plugin adds
    its own from ``privex_startup``)."""
    entries = app.extensions.setdefault("privex_nav", [])
    if any(existing.endpoint == entry.endpoint for existing in entries):
        raise ValueError(f"the navigation already has an entry for {entry.endpoint}")
    entries.append(entry)
    entries.sort(key=lambda e: (e.order, e.label))


def nav_entries() -> list[NavEntry]:
    return list(current_app.extensions.get("privex_nav", ()))


# -- the sign-in gate ----------------------------------------------------------------------------------------------

def public_page(view):
    """Open this page to everyone (landing, sign-in, sign-up, the widget): every other page needs a sign-in."""
    view.public_page = True
    return view


def sign_in_first():
    """``before_request`` of the pages: send whoever is not signed in to /login?next=<this page>."""
    view = current_app.view_functions.get(request.endpoint)
    if view is None or getattr(view, "public_page", False) or current_user.is_authenticated:
        return None
    target = url_for("web.auth.login", next=request.full_path.rstrip("?"))
    if request.htmx:
        return htmx_response("", 401, redirect=target)
    return redirect(target)


# -- where the signed-in person works ------------------------------------------------------------------------------

@dataclass
class Place:
    """Where the signed-in person is working in this request, and the choices the switcher offers."""

    organization: Organization | None
    organization_role: str | None
    workspace: Workspace | None
    workspace_role: str | None  # effective: an organization's owners and admins are admins of every workspace
    _choices: list | None = field(default=None, repr=False)

    @property
    def choices(self) -> list[tuple[Organization, str, list[Workspace]]]:
        """Every organization of the user with their role and the workspaces they can open, by name."""
        if self._choices is None:
            self._choices = switcher_choices(current_user.id)
        return self._choices


def here() -> Place | None:
    """The signed-in person's organization and workspace for this request (None when signed out)."""
    if not current_user.is_authenticated:
        return None
    if PLACE_KEY not in request.environ:  # kept on the request, not ``g``: an app context can outlive it
        place = request.environ[PLACE_KEY] = _resolve_place(current_user.id)
        act_as(Caller(user=current_user._get_current_object(),
                      organization_id=place.organization.id if place.organization else None,
                      workspace_id=place.workspace.id if place.workspace else None))
    return request.environ[PLACE_KEY]


def settle_place() -> None:
    """``before_request`` of the pages: resolve the organization and workspace before the view runs, so
    ``tenancy.context`` knows the caller even in a view that calls ``require`` or ``scoped`` directly."""
    here()


def _uuid(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def _org_role(organization_id, user_id) -> str | None:
    return db.session.scalar(sa.select(OrganizationMember.role).where(
        OrganizationMember.organization_id == organization_id, OrganizationMember.user_id == user_id))


def _workspace_role(workspace_id, user_id) -> str | None:
    return db.session.scalar(sa.select(WorkspaceMember.role).where(
        WorkspaceMember.workspace_id == workspace_id, WorkspaceMember.user_id == user_id))


def _resolve_place(user_id) -> Place:
    """The session's organization and workspace when the user may still open them, else the defaults."""
    organization_id = _uuid(session.get(SESSION_ORGANIZATION))
    org_role = _org_role(organization_id, user_id) if organization_id else None
    if org_role is None:
        organization_id, _ = workspaces.default_context(user_id)
        org_role = _org_role(organization_id, user_id) if organization_id else None
    if org_role is None:
        return Place(None, None, None, None)
    workspace = db.session.get(Workspace, _uuid(session.get(SESSION_WORKSPACE)) or uuid.UUID(int=0))
    if workspace is None or workspace.organization_id != organization_id or not _opens(workspace, user_id, org_role):
        first = workspaces.first_workspace(organization_id, user_id, org_role)
        workspace = db.session.get(Workspace, first) if first else None
    role = effective_workspace_role(org_role, _workspace_role(workspace.id, user_id)) if workspace else None
    remember(organization_id, workspace.id if workspace else None)
    return Place(db.session.get(Organization, organization_id), org_role, workspace, role)


def _opens(workspace: Workspace, user_id, org_role: str) -> bool:
    return org_role in ("owner", "admin") or _workspace_role(workspace.id, user_id) is not None


def remember(organization_id, workspace_id) -> None:
    """Keep this organization and workspace in the session (the switcher, accepting an invitation)."""
    wanted = {SESSION_ORGANIZATION: str(organization_id) if organization_id else None,
              SESSION_WORKSPACE: str(workspace_id) if workspace_id else None}
    if any(session.get(key) != value for key, value in wanted.items()):  # unchanged: no new cookie
        session.update(wanted)
    request.environ.pop(PLACE_KEY, None)


def switch_to(user_id, organization_id, workspace_id=None) -> None:
    """Work in another organization (and workspace) of the user's; NotFound when they are not a member of it or
    cannot open that workspace. Without a workspace: their first one there."""
    org_role = _org_role(organization_id, user_id) if organization_id else None
    if org_role is None:
        raise NotFound("you are not a member of that organization")
    if workspace_id is not None:
        workspace = db.session.get(Workspace, workspace_id)
        if workspace is None or workspace.organization_id != organization_id or not _opens(workspace, user_id,
                                                                                           org_role):
            raise NotFound("you cannot open that workspace")
    else:
        workspace_id = workspaces.first_workspace(organization_id, user_id, org_role)
    remember(organization_id, workspace_id)


def switcher_choices(user_id) -> list[tuple[Organization, str, list[Workspace]]]:
    memberships = db.session.execute(
        sa.select(Organization, OrganizationMember.role).join(
            OrganizationMember, OrganizationMember.organization_id == Organization.id)
        .where(OrganizationMember.user_id == user_id).order_by(Organization.name, Organization.id)).all()
    full = [organization.id for organization, role in memberships if role in ("owner", "admin")]
    opened = sa.select(Workspace).where(sa.or_(
        Workspace.organization_id.in_(full),
        Workspace.id.in_(sa.select(WorkspaceMember.workspace_id).where(WorkspaceMember.user_id == user_id)),
    )).order_by(Workspace.is_default.desc(), Workspace.name)
    by_organization: dict = {}
    for workspace in db.session.scalars(opened):
        by_organization.setdefault(workspace.organization_id, []).append(workspace)
    return [(organization, role, by_organization.get(organization.id, [])) for organization, role in memberships]


# -- what areas call -----------------------------------------------------------------------------------------------

def workspace_for(action: str = "resources.read") -> Workspace:
    """The current workspace once ``action`` (a name in ``tenancy.permissions.PERMISSIONS``) is allowed there:
    ``Forbidden`` (the 403 page) for a viewer asking to write; ``Conflict`` (409) when there is no workspace."""
    place = here()
    if place is None or place.workspace is None:
        raise Conflict("you have no workspace in this organization yet: ask one of its admins to add you to one, "
                       "or switch to another organization")
    require(action, workspace=place.workspace)
    return place.workspace


def organization_for(action: str = "org.read") -> Organization:
    """The current organization once ``action`` (an organization-level permission) is allowed there."""
    place = here()
    if place is None or place.organization is None:
        raise NotFound("you are not a member of any organization")
    require(action, organization_id=place.organization.id)
    return place.organization


def resource_or_404(model, resource_id, action: str = "resources.read"):
    """The ``model`` row ``resource_id`` of the current workspace, once ``action`` is allowed there; any other id
    (another tenant's, another workspace's, a malformed one) is ``NotFound``: the 404 page."""
    workspace_for(action)
    resource_id = _uuid(resource_id)
    if resource_id is None:
        raise NotFound(f"{model.__name__} not found")
    return get_scoped_or_404(model, resource_id)


def may(action: str) -> bool:
    """Whether the signed-in person may do ``action`` where they are now (for templates: hide what they cannot)."""
    place = here()
    if place is None or place.organization is None:
        return False
    return allows(action, place.organization_role, place.workspace_role)


def signed_in_only(view):
    """For views outside ``privex.web``'s blueprints (a plugin's): the same gate as every page."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        return sign_in_first() or view(*args, **kwargs)

    return wrapper


LAST_PAGE = 100_000  # a page number past any list: beyond it, PostgreSQL's OFFSET would overflow (a 500)


def page_number(argument: str = "page") -> int:
    """The ``?page=`` (or another argument) asked for, from 1 to LAST_PAGE; anything else is the nearest of them."""
    return max(1, min(request.args.get(argument, 1, type=int), LAST_PAGE))


def paginate(statement, per_page: int, *, argument: str = "page", count: bool = True):
    """One page of ``statement``'s rows for a list page (``?page=N``): a page past the end is empty, never an error,
    and no page number overflows the database's OFFSET. Every list of the builder pages through this."""
    return db.paginate(statement, page=page_number(argument), per_page=per_page, max_per_page=per_page,
                       error_out=False, count=count)
