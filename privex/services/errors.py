"""The errors services raise: what went wrong in the domain's terms, never in HTTP's.

A service is called from the REST API, the builder's pages, the back office, Celery tasks, messaging channels and
chatflow nodes; each front end translates these errors in one place (``privex.api.errors`` to JSON with a status,
the pages to a message beside the field, a task to a failed state). So nothing under ``privex/services/`` imports
Flask-Smorest's ``abort``, werkzeug's exceptions or ``privex.api``.

Every error carries a ``message`` written for the person who caused it and, where a field is to blame, ``errors``:
an object mapping field names (nested objects for nested fields) to lists of messages.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Something the caller asked for cannot be done; ``message`` says why, ``errors`` which fields."""

    def __init__(self, message: str, errors: dict | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors or {}


class NotFound(ServiceError):
    """It does not exist, or not for this caller (another tenant's id is not found, never forbidden)."""


class Conflict(ServiceError):
    """It clashes with what exists: a name taken, already done, the last owner."""


class Invalid(ServiceError):
    """What was given is not acceptable; ``errors`` names the fields."""


class Unsupported(Invalid):
    """A kind of content nothing here reads (a file type no parser knows, a body that is not JSON)."""


class TooLarge(Invalid):
    """Too big or too many: a body, a file, a number of files."""


class NotAuthenticated(ServiceError):
    """Who is asking is not known: no or bad credentials, a failed signature check."""


class Forbidden(ServiceError):
    """The caller is known and sees it, but may not do this."""


class Gone(ServiceError):
    """It existed and has expired (an invitation)."""


class RateLimited(ServiceError):
    """Too many in a window; try again after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int, errors: dict | None = None):
        super().__init__(message, errors)
        self.retry_after = int(retry_after)


class PlanLimit(ServiceError):
    """The organization's plan does not allow more of this."""


class DetailsRequired(ServiceError):
    """The conversation cannot go on until the visitor leaves the details asked for (a lead form)."""


class ProviderFailed(ServiceError):
    """An outside service this depends on (an LLM, an embedding server, a token endpoint) failed or did not answer
    in time (``timed_out``)."""

    def __init__(self, message: str, *, timed_out: bool = False, errors: dict | None = None):
        super().__init__(message, errors)
        self.timed_out = timed_out
