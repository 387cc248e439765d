"""The HTTP status of each domain error (``privex.services.errors``), for every front end that answers over HTTP:
the API turns a refusal into JSON with this status, the builder's pages into a message beside the field or an error
page with it. Services never read this module: they know no HTTP.
"""

from __future__ import annotations

from privex.services import errors as domain

# A subclass takes its nearest listed ancestor's status.
STATUS: dict[type[domain.ServiceError], int] = {
    domain.Invalid: 422,
    domain.Unsupported: 415,
    domain.TooLarge: 413,
    domain.NotAuthenticated: 401,
    domain.PlanLimit: 402,
    domain.Forbidden: 403,
    domain.NotFound: 404,
    domain.Conflict: 409,
    domain.Gone: 410,
    domain.DetailsRequired: 428,
    domain.RateLimited: 429,
    domain.ProviderFailed: 502,
    domain.ServiceError: 400,
}


def status_of(error: domain.ServiceError) -> int:
    if isinstance(error, domain.ProviderFailed) and error.timed_out:
        return 504
    for kind in type(error).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 400
