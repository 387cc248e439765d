"""Who is calling, in which organization and workspace, and whether they may act.

Every API view that is not public reads ``caller()``; tenant resources are read only through ``scoped()``, which
filters on the caller's workspace, so another tenant's row is simply not found (404, never 403).
"""

from __future__ import annotations

import functools
import hmac
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, NamedTuple

import sqlalchemy as sa
from flask import request
from flask.views import MethodView

from privex.auth.tokens import TokenError, decode_access_token, sha256
from privex.clock import now
from privex.extensions import db
from privex.models import APIKey, Organization, OrganizationMember, User, Workspace, WorkspaceMember
from privex.services.errors import Conflict, Forbidden, NotAuthenticated, NotFound
from privex.tenancy.permissions import API_KEY_SCOPES, PERMISSIONS, allows


class APIKeyRow(NamedTuple):
    """What authorizing with an API key reads of it (the columns of ``API_KEY``, in order), and its workspace's
    organization."""

    id: uuid.UUID
    workspace_id: uuid.UUID
    organization_id: uuid.UUID
    permissions: list
    key_hash: str
    revoked_at: datetime | None
    expires_at: datetime | None
    last_used_at: datetime | None


# The key with the prefix ``key_prefix``: plain columns on the connection, as it is read for every request made with
# a key (an ORM load of it and the commit that expired it cost more than the query). Statements that read other rows
# of the request at the same time outer-join it as a subquery (``privex.services.conversations``).
API_KEY = (sa.select(APIKey.id, APIKey.workspace_id, Workspace.organization_id, APIKey.permissions, APIKey.key_hash,
                     APIKey.revoked_at, APIKey.expires_at, APIKey.last_used_at)
           .join(Workspace, Workspace.id == APIKey.workspace_id)
           .where(APIKey.prefix == sa.bindparam("key_prefix", type_=APIKey.prefix.type)))


@dataclass
class Caller:
    user: User | None
    organization_id: uuid.UUID | None
    workspace_id: uuid.UUID | None
    session_id: uuid.UUID | None = None
    api_key: APIKeyRow | None = None
    _org_roles: dict = field(default_factory=dict)
    _workspace_roles: dict = field(default_factory=dict)

    @property
    def user_id(self) -> uuid.UUID | None:
        return self.user.id if self.user else None

    def org_role(self, organization_id: uuid.UUID) -> str | None:
        """The caller's current role in an organization (read from the database once per request)."""
        if self.user is None:
            return None
        if organization_id not in self._org_roles:
            self._org_roles[organization_id] = db.session.scalar(
                sa.select(OrganizationMember.role).where(OrganizationMember.organization_id == organization_id,
                                                         OrganizationMember.user_id == self.user.id))
        return self._org_roles[organization_id]

    def workspace_role(self, workspace: Workspace) -> str | None:
        if self.api_key is not None:
            return None
        if workspace.id not in self._workspace_roles:
            self._workspace_roles[workspace.id] = db.session.scalar(
                sa.select(WorkspaceMember.role).where(WorkspaceMember.workspace_id == workspace.id,
                                                      WorkspaceMember.user_id == self.user.id))
        return self._workspace_roles[workspace.id]

    def may(self, action: str, *, organization_id: uuid.UUID | None = None,
            workspace: Workspace | None = None) -> bool:
        if self.api_key is not None:
            granted = set().union(*(API_KEY_SCOPES.get(scope, set()) for scope in self.api_key.permissions))
            return action in granted and workspace is not None and workspace.id == self.api_key.workspace_id
        if workspace is not None:
            organization_id = workspace.organization_id
        return allows(action, self.org_role(organization_id),
                      self.workspace_role(workspace) if workspace is not None else None)

    def sees(self, *, organization_id: uuid.UUID | None = None, workspace: Workspace | None = None) -> bool:
        """Whether the thing exists as far as this caller is concerned (else it answers 404)."""
        if self.api_key is not None:
            if workspace is not None:
                return workspace.id == self.api_key.workspace_id
            return organization_id == self.organization_id
        if workspace is not None:
            role = self.org_role(workspace.organization_id)
            return role in ("owner", "admin") or (role is not None and self.workspace_role(workspace) is not None)
        return self.org_role(organization_id) is not None


def authenticate() -> Caller:
    """Read the caller from ``Authorization: Bearer <JWT or API key>`` or ``X-API-Key``; 401 when absent or bad."""
    header = request.headers.get("Authorization", "")
    scheme, _, credential = header.partition(" ")
    api_key = request.headers.get("X-API-Key")
    if scheme.lower() == "bearer" and credential.startswith("pk_"):
        api_key = credential
    if api_key:
        return api_key_caller(api_key.strip())
    if scheme.lower() != "bearer" or not credential.strip():
        raise NotAuthenticated("Sign in first: send `Authorization: Bearer <access token>` or an API key.")
    try:
        claims = decode_access_token(credential.strip())
    except TokenError as error:
        raise NotAuthenticated(str(error)) from error
    user = db.session.get(User, claims.user_id)
    if user is None or not user.is_active:
        raise NotAuthenticated("this account no longer exists or is disabled")
    return Caller(user=user, organization_id=claims.organization_id, workspace_id=claims.workspace_id,
                  session_id=claims.session_id)


def api_key_prefix(key: str) -> str:
    """The part of an API key it is looked up by (``pk_...`` before the dot); the rest is checked against its hash."""
    return key.split(".", 1)[0]


def api_key_caller(key: str) -> Caller:
    """The caller an API key stands for; NotAuthenticated when it is unknown, revoked or expired."""
    found = db.session.connection().execute(API_KEY, {"key_prefix": api_key_prefix(key)}).first()
    return key_caller(key, None if found is None else APIKeyRow._make(found))


def key_caller(key: str, row: APIKeyRow | None) -> Caller:
    """The caller an API key stands for, given the row a statement read for its prefix (None: no key has it);
    NotAuthenticated when it is unknown, revoked or expired. Read with every request, so a key revoked, deleted or
    given other permissions is answered so at the very next one."""
    if row is None or not hmac.compare_digest(row.key_hash, sha256(key)):
        raise NotAuthenticated("the API key is invalid")
    if row.revoked_at is not None:
        raise NotAuthenticated("the API key has been revoked")
    if row.expires_at is not None and row.expires_at <= now():
        raise NotAuthenticated("the API key has expired")
    if row.last_used_at is None or (now() - row.last_used_at).total_seconds() > 60:
        # At most a write a minute per key, and on its own: GET routes commit nothing.
        db.session.execute(sa.update(APIKey).where(APIKey.id == row.id).values(last_used_at=now()))
        db.session.commit()
    return Caller(user=None, organization_id=row.organization_id, workspace_id=row.workspace_id, api_key=row)


def caller() -> Caller:
    """The authenticated caller of this request (kept on the request, not ``g``: an app context can outlive it)."""
    if "privex.caller" not in request.environ:
        request.environ["privex.caller"] = authenticate()
    return request.environ["privex.caller"]


def act_as(who: Caller) -> None:
    """Make ``who`` this request's caller, for front ends that know who is asking without a header: the builder's
    pages (a Flask-Login session in a chosen organization and workspace). ``require``, ``scoped`` and
    ``get_scoped_or_404`` then answer for them exactly as for an API caller."""
    request.environ["privex.caller"] = who


def auth_required(view):
    """Authenticate before the view runs (401 otherwise)."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        caller()
        return view(*args, **kwargs)

    return wrapper


def require(action: str, *, organization_id: uuid.UUID | None = None, workspace: Workspace | None = None) -> None:
    """404 when the caller cannot see the organization or workspace, 403 when they see it but may not act."""
    assert action in PERMISSIONS, action
    who = caller()
    if not who.sees(organization_id=organization_id, workspace=workspace):
        raise NotFound("Not found.")
    if not who.may(action, organization_id=organization_id, workspace=workspace):
        if who.api_key is not None:
            raise Forbidden(f"this API key's permissions do not allow `{action}`")
        raise Forbidden(f"your role here does not allow `{action}`")


def require_user() -> User:
    """For actions only a signed-in person may take (not an API key)."""
    who = caller()
    if who.user is None:
        raise Forbidden("this action needs a signed-in user, not an API key")
    return who.user


def current_workspace(action: str = "resources.read") -> Workspace:
    """The workspace of the caller's context, after checking ``action`` there."""
    who = caller()
    workspace = db.session.get(Workspace, who.workspace_id) if who.workspace_id else None
    if workspace is None:
        raise Conflict("no workspace selected: call POST /api/v1/auth/switch-context first")
    require(action, workspace=workspace)
    return workspace


def scoped(model):
    """``select(model)`` limited to the caller's workspace: the only way API code reads tenant resources."""
    who = caller()
    if who.workspace_id is None:
        current_workspace()  # answers 409: no workspace selected
    return sa.select(model).where(model.workspace_id == who.workspace_id)


def get_scoped_or_404(model, resource_id: uuid.UUID):
    row = db.session.scalar(scoped(model).where(model.id == resource_id))
    if row is None:
        raise NotFound(f"{model.__name__} not found")
    return row


class TenantView(MethodView):
    """A view of one organization (``org_id`` in the URL) or workspace (``ws_id``).

    Before the request body is even parsed, the caller must be signed in (401), able to see the organization or
    workspace (404, as if it did not exist) and hold the permission that ``permissions`` names for the HTTP method
    (403). The view then finds it in ``self.organization`` / ``self.workspace``. A permission may be a function of
    the URL's arguments, for actions that depend on them (anyone may remove themselves)."""

    permissions: dict[str, str | Callable[[dict], str]] = {}

    def dispatch_request(self, **kwargs):
        caller()
        action = self.permissions[request.method.lower()]
        if callable(action):
            action = action(kwargs)
        if "ws_id" in kwargs:
            self.workspace = db.session.get(Workspace, kwargs["ws_id"])
            if self.workspace is None:
                raise NotFound("Workspace not found.")
            require(action, workspace=self.workspace)
            self.organization = db.session.get(Organization, self.workspace.organization_id)
        else:
            self.organization = db.session.get(Organization, kwargs["org_id"])
            if self.organization is None:
                raise NotFound("Organization not found.")
            require(action, organization_id=self.organization.id)
        return super().dispatch_request(**kwargs)


def public(view_class=None, *, api_key: bool = False):
    """Mark a view as open to anonymous callers: the isolation test skips it and the OpenAPI document declares that
    it takes no credentials (``privex.api.security``); nothing else changes.

    ``@public(api_key=True)``: the view also takes an API key, which it checks itself, and is documented so."""

    def mark(cls):
        cls.public = True
        cls.public_api_key = api_key
        return cls

    return mark if view_class is None else mark(view_class)


class ResourceView(MethodView):
    """A view of resources in the caller's current workspace (the context of their token or API key).

    Before the body is parsed: 401 without credentials, 403 when the caller's role (or key scopes) lacks the
    permission ``permissions`` names for the HTTP method, 404 when an id in the URL (listed in ``resources``: URL
    argument -> model) is not a resource of this workspace. The view finds them in ``self.found``."""

    permissions: dict[str, str] = {"get": "resources.read", "post": "resources.write", "put": "resources.write",
                                   "patch": "resources.write", "delete": "resources.write"}
    resources: dict[str, type] = {}

    def dispatch_request(self, **kwargs):
        self.workspace = current_workspace(self.permissions[request.method.lower()])
        self.found = {}
        for argument, model in self.resources.items():
            if argument in kwargs:
                self.found[argument] = get_scoped_or_404(model, kwargs[argument])
        return super().dispatch_request(**kwargs)
