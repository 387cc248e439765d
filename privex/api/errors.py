"""One error shape for the whole API: ``{"code", "message", "errors"}`` with the HTTP status.

flask-smorest registers its error handler for every ``HTTPException`` app-wide; ours answers JSON only for paths
under ``/api`` and hands everything else (the builder's pages, ``/admin``) to the HTML error page the pages
registered as ``app.extensions["privex_error_page"]`` (``privex.web.errors``), or werkzeug's plain one without it.

Services raise the domain errors of ``privex.services.errors``; ``privex.statuses.STATUS`` is the one place that
says which HTTP status each one is, for the API and for the pages.
"""

from __future__ import annotations

from flask import current_app, request
from flask_smorest import Api as SmorestApi
from flask_smorest import abort
from werkzeug.exceptions import HTTPException

from privex.api.error_docs import ErrorResponses, ErrorSchema
from privex.api.security import SECURITY_SCHEMES, OperationSecurity
from privex.services import errors as domain
from privex.statuses import STATUS, status_of  # noqa: F401  (the API's statuses, re-exported)

API_PREFIX = "/api"
UNAUTHORIZED_HEADERS = {"WWW-Authenticate": 'Bearer realm="privex"'}

def headers_of(error: domain.ServiceError) -> dict:
    if isinstance(error, domain.RateLimited):
        return {"Retry-After": str(error.retry_after)}
    if isinstance(error, domain.NotAuthenticated):
        return dict(UNAUTHORIZED_HEADERS)
    return {}


def handle_service_error(error: domain.ServiceError):
    """A service's refusal: JSON under /api; elsewhere the HTTP error of the same status (an HTML page)."""
    status = status_of(error)
    if wants_json():
        return {"code": status, "message": error.message, "errors": as_object(error.errors)}, status, headers_of(error)
    page = HTTPException(error.message)
    page.code = status
    return html_error_page(page), status, headers_of(error)


def html_error_page(error: HTTPException):
    """The HTML page for an error outside /api: the builder's own when it registered one."""
    render = current_app.extensions.get("privex_error_page")
    return render(error) if render is not None else error.get_response()


def as_object(errors) -> dict:
    """``errors`` as documented: always an object of field -> messages (a bare list names no field)."""
    if isinstance(errors, dict):
        return errors
    return {"_schema": errors if isinstance(errors, list) else [str(errors)]} if errors else {}


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
    errors = as_object(errors)
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
        spec_kwargs = dict(spec_kwargs or {})
        spec_kwargs["extra_plugins"] = [*spec_kwargs.get("extra_plugins", ()), OperationSecurity(app),
                                        ErrorResponses(app)]
        super().init_app(app, *args, spec_kwargs=spec_kwargs, **kwargs)
        for name, scheme in SECURITY_SCHEMES.items():
            self.spec.components.security_scheme(name, scheme)
        app.before_request(require_known_body_type)
        app.register_error_handler(domain.ServiceError, handle_service_error)

    def handle_http_exception(self, error: HTTPException):
        if not wants_json():
            response = html_error_page(error)
            response.status_code = error.code
            return response
        payload, headers = error_payload(error)
        if error.code == 405 and error.valid_methods:
            headers.setdefault("Allow", ", ".join(error.valid_methods))
        response = error.get_response()
        for name, value in response.headers.items():
            if name.lower() in {"retry-after", "allow", "www-authenticate"}:
                headers.setdefault(name, value)
        return payload, error.code, headers
