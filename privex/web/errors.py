"""The error pages of everything that is not the API (the builder, /admin, unknown paths): the shell with a plain
title, what happened, and where to go next. The API keeps its JSON errors (``privex.api.errors``, which calls
``error_page`` for every other path: one error handler for the whole app).

A service's refusal that a view lets through (``Forbidden`` from ``workspace_for``, ``NotFound`` from
``resource_or_404``) arrives here with its status (``privex.statuses``) and its message.
"""

from __future__ import annotations

import logging

from flask import Response, render_template
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

TITLES = {
    400: "That request could not be read",
    401: "Please sign in",
    402: "Your plan's limit is reached",
    403: "You may not do that here",
    404: "Page not found",
    405: "That is not possible here",
    409: "That clashes with what exists",
    410: "That has expired",
    413: "That is too large",
    422: "Something in that is not acceptable",
    429: "Too many attempts",
    500: "Something went wrong on our side",
}
# Werkzeug's descriptions speak to developers; these to the person in front of the page.
EXPLANATIONS = {
    400: "The form may have expired: go back, reload the page and try again.",
    403: "Your role here does not allow this. Ask an admin of this workspace if you need it.",
    404: "There is nothing at this address, or it belongs to a workspace you are not working in.",
    405: "Go back and use the page's own buttons.",
    429: "Wait a minute, then try again.",
    500: "The problem has been logged. Try again in a moment.",
}
KEPT_HEADERS = ("Retry-After", "Allow", "WWW-Authenticate")


def error_page(error: HTTPException) -> Response:
    """The shell's page for ``error``; werkzeug's plain page if even the shell cannot be drawn (a 500 because the
    database is down must still answer)."""
    code = error.code or 500
    message = _message(error, code)
    try:
        html = render_template("errors/error.html", code=code, title=TITLES.get(code, "That did not work"),
                               message=message)
    except Exception:  # noqa: BLE001  (the page of last resort)
        log.exception("the error page could not be drawn")
        return error.get_response()
    response = Response(html, code, mimetype="text/html")
    for name, value in error.get_response().headers.items():
        if name in KEPT_HEADERS:
            response.headers[name] = value
    return response


def _message(error: HTTPException, code: int) -> str:
    if isinstance(error, CSRFError):
        return ("This form has expired, or was sent from another site. Go back, reload the page and try again.")
    described = error.description or ""
    if code >= 500 or not described or described == type(error).description:
        return EXPLANATIONS.get(code, described)
    return described  # a service's own words (or a CSRF refusal's)
