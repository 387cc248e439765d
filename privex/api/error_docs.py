"""How the OpenAPI document describes errors: one schema, ``{code, message, errors}`` with ``errors`` always an object,
and on each operation the error statuses it can really answer, instead of flask-smorest's catch-all ``default``
(which made every status "documented", so a client — or the API fuzzer — could not tell a 404 from a surprise).

The statuses every operation of a kind shares are added here, from what the route is:

- every operation: 422 (a query string holding text no column stores, ``privex.api.bodies``; a field its schema
  refuses) and 429 (``PRIVEX_RATELIMIT_DEFAULT`` applies to every route when set);
- one that reads a body: 400 (not JSON, or past the nesting and size bounds), 413 (over ``PRIVEX_MAX_UPLOAD_MB`` or
  ``PRIVEX_MAX_UPLOAD_FILES``), 415 (a body of another type than it reads);
- one with arguments in its path: 404 (not found, or another tenant's);
- one that needs a signed-in caller (not marked ``public``): 401, and 403 (the caller's role may not do it).

- a family of routes sharing a reason (``ROUTE_FAMILIES``): every route of a knowledge-base draft answers 409 once
  the draft was finalized.

Anything else an operation answers (409, 402, 410, 502...) is declared on the route with ``@blp.alt_response``; a
declared error with only a description is given the error schema here.
"""

from __future__ import annotations

from apispec import BasePlugin
from flask import Flask
from marshmallow import Schema, fields

ROUTE_FAMILIES = {"/api/v1/kb-drafts/{draft_id}": [409]}


class ErrorSchema(Schema):
    """The body of every API error."""

    code = fields.Integer(required=True, metadata={"description": "the HTTP status"})
    message = fields.String(required=True, metadata={"description": "what went wrong, for a person"})
    errors = fields.Dict(required=True, keys=fields.String(), metadata={
        "description": "the fields to blame, by name or dotted path, each with its messages (a nested object for a "
                       "nested field); empty when no field is to blame"})


class ErrorResponses(BasePlugin):
    """An apispec plugin adding the statuses above to each operation as flask-smorest documents it."""

    def __init__(self, app: Flask):
        super().__init__()
        self.app = app

    def operation_helper(self, path=None, operations=None, **kwargs):
        rule = kwargs.get("rule")
        if rule is None or not operations:
            return
        view = self.app.view_functions.get(rule.endpoint)
        view_class = getattr(view, "view_class", None)
        public = getattr(view_class, "public", False) or getattr(view, "public", False)
        for method, operation in operations.items():
            if not isinstance(operation, dict):
                continue
            statuses = [422, 429]
            if operation.get("requestBody"):
                statuses += [400, 413, 415]
            if rule.arguments:
                statuses.append(404)
            if not public:
                statuses += [401, 403]
            statuses += [status for prefix, extra in ROUTE_FAMILIES.items() if path.startswith(prefix)
                         for status in extra]
            responses = operation.setdefault("responses", {})
            for status in sorted(set(statuses)):
                if status not in responses and str(status) not in responses:
                    responses[str(status)] = _NAMES[status]
            for status, response in responses.items():
                # An error a route declares with only a description (``@blp.alt_response(409, description=...)``)
                # still answers the error body: say so, so clients and the fuzzer can check it.
                if 400 <= int(status) < 500 and isinstance(response, dict) and "content" not in response:
                    response["content"] = {"application/json": {"schema": "Error"}}


_NAMES = {400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND", 409: "CONFLICT",
          413: "REQUEST_ENTITY_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE", 422: "UNPROCESSABLE_ENTITY",
          429: "TOO_MANY_REQUESTS"}
