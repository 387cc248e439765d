"""One error shape for the whole API: ``{"code", "message", "errors"}`` with the HTTP status.

flask-smorest registers its error handler for every ``HTTPException`` app-wide; ours answers JSON only for paths
under ``/api`` and hands everything else (the builder's pages, ``/admin``) back to Flask's HTML error pages.
"""

from __future__ import annotations

from flask import current_app, request
from flask_smorest import Api as SmorestApi
from flask_smorest import abort
from werkzeug.exceptions import HTTPException

from privex.api.error_docs import ErrorResponses, ErrorSchema

API_PREFIX = "/api"


class PaymentRequired(HTTPException):
    """402: the organization's plan does not allow this (werkzeug has no class for 402)."""

    code = 402
    description = "The organization's plan does not allow this."

    def __init__(self, message: str, errors: dict | None = None):
        super().__init__(message)
        self.data = {"message": message, "errors": errors or {}}


def wants_json() -> bool:
    return request.path == API_PREFIX or request.path.startswith(API_PREFIX + "/")


def error_payload(error: HTTPException) -> tuple[dict, dict]:
    data = getattr(error, "data", None) or {}
    message = data.get("message") or error.description or error.name
    errors = data.get("errors") or data.get("messages") or {}
    # webargs nests validation errors by location ({"json": {...}}); one location is the common case.
    if isinstance(errors, dict) and list(errors) in (["json"], ["query"], ["form"], ["files"]) and isinstance(
            next(iter(errors.values())), dict):
        errors = next(iter(errors.values()))
    if not isinstance(errors, dict):  # the documented shape: always an object of field -> messages
        errors = {"_schema": errors if isinstance(errors, list) else [str(errors)]}
    if not data.get("message"):
        if error.code == 422:
            message = "The request was well-formed but some fields are invalid; see `errors`."
        elif error.code == 413:
            message = f"The request body is larger than the {current_app.config['MAX_UPLOAD_MB']} MB limit."
        elif error.code == 429:
            message = f"Too many requests ({error.description}); try again after the Retry-After delay."
    return {"code": error.code, "message": message, "errors": errors}, dict(data.get("headers") or {})


BODY_TYPES = ("application/json", "multipart/form-data")


def require_known_body_type():
    """API bodies are JSON (uploads multipart/form-data); anything else is refused with 415 before parsing."""
    if not wants_json() or request.method not in ("POST", "PUT", "PATCH"):
        return
    if not request.content_length and not request.headers.get("Transfer-Encoding"):
        return
    mimetype = request.mimetype
    if mimetype in BODY_TYPES or mimetype.endswith("+json"):
        return
    abort(415, message=f"Send the request body as application/json (file uploads as multipart/form-data), "
                       f"not {mimetype or 'an untyped body'}.")


class Api(SmorestApi):
    ERROR_SCHEMA = ErrorSchema
    DEFAULT_ERROR_RESPONSE_NAME = None  # each operation lists its own error statuses (privex.api.error_docs)

    def init_app(self, app, *args, spec_kwargs=None, **kwargs):
        spec_kwargs = {**(spec_kwargs or {}), "extra_plugins": [ErrorResponses(app)]}
        super().init_app(app, *args, spec_kwargs=spec_kwargs, **kwargs)
        app.before_request(require_known_body_type)

    def handle_http_exception(self, error: HTTPException):
        if not wants_json():
            return error  # Flask renders its HTML page for it
        payload, headers = error_payload(error)
        if error.code == 405 and error.valid_methods:
            headers.setdefault("Allow", ", ".join(error.valid_methods))
        response = error.get_response()
        for name, value in response.headers.items():
            if name.lower() in {"retry-after", "allow", "www-authenticate"}:
                headers.setdefault(name, value)
        return payload, error.code, headers
