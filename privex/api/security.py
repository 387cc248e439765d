"""The credentials each operation of the OpenAPI document takes, declared from what its view really checks.

Swagger UI (``/api/docs``) sends a token it was given under "Authorize" only with operations that declare its
scheme; without declarations it reports success and then sends nothing. Rather than decorating every operation, an
apispec plugin derives each one's ``security`` as flask-smorest registers it, from the same markers the request
path obeys (``privex.tenancy.context``):

- a view marked ``@public`` takes no credentials (``security: []``), or, marked ``@public(api_key=True)``, an API key
  or none (the public chat API: without a key, a browser on an origin the bot allows);
- any other view takes a JWT access token (``bearerAuth``), and an API key (``apiKey``) too when the permission it
  checks for the method is one an API key's scopes can grant (``API_KEY_SCOPES``): workspace resources, not
  membership, keys, billing or the caller's own account.

An operation that declares ``security`` itself (``@blp.doc(security=...)``) keeps its own.
"""

from __future__ import annotations

from apispec import BasePlugin

from privex.tenancy.permissions import API_KEY_SCOPES

SECURITY_SCHEMES = {
    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                   "description": "The `access_token` of a sign-in (`POST /auth/email/login`, a wallet's `/verify`, "
                                  "`/auth/refresh`), sent as `Authorization: Bearer <token>`. Where `apiKey` is "
                                  "accepted too, an API key (`pk_...`) may be sent this way as well."},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key",
               "description": "A workspace's API key (`pk_...`, from `POST /workspaces/{id}/api-keys`); its "
                              "`permissions` (`read`, `write`, `chat`) decide what it may do."},
}
BEARER = {"bearerAuth": []}
API_KEY = {"apiKey": []}
ANONYMOUS: dict = {}  # an empty requirement: the operation also answers callers without credentials
API_KEY_ACTIONS = frozenset().union(*API_KEY_SCOPES.values())


def security_of(view, method: str) -> list[dict]:
    """The OpenAPI security requirements of ``method`` (lower case) on a Flask view function."""
    view_class = getattr(view, "view_class", None)
    marked = view_class if view_class is not None else view
    if getattr(marked, "public", False):
        return [API_KEY, ANONYMOUS] if getattr(marked, "public_api_key", False) else []
    permission = getattr(view_class, "permissions", {}).get(method)
    # A permission computed from the URL (remove a member, or yourself) is a person's action: no API key.
    if isinstance(permission, str) and permission in API_KEY_ACTIONS:
        return [BEARER, API_KEY]
    return [BEARER]


class OperationSecurity(BasePlugin):
    """apispec plugin: sets each operation's ``security`` from its Flask view (found by the rule's endpoint)."""

    def __init__(self, app):
        super().__init__()
        self.app = app

    def operation_helper(self, path=None, operations=None, rule=None, **kwargs):
        if rule is None or operations is None:
            return
        view = self.app.view_functions[rule.endpoint]
        for method, operation in operations.items():
            operation.setdefault("security", security_of(view, method))
