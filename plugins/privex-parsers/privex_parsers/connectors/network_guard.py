"""The guard against server-side request forgery for source connectors: the core's ``privex.network_guard`` (one
guard for connectors and chatflow nodes alike), plus the ``api_base`` check the API connectors share.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from privex.contracts import SourceError
from privex.network_guard import Resolver, is_public_address, refuse_private_host, system_resolver

__all__ = ["Resolver", "checked_api_base", "is_public_address", "refuse_private_host", "system_resolver"]


def checked_api_base(value: object, default: str, resolver: Resolver, *, service: str,
                     allow_private: object = False) -> str:
    """The ``api_base`` setting of an API connector: an http(s) URL without a trailing slash, whose host is public
    unless ``allow_private`` is true (a proxy or a stand-in on the operator's own network).

    Tenants can set it, so it gets the same guard as a crawl; otherwise it would point the server (and the stored
    token) at an internal address.
    """
    if not isinstance(allow_private, bool):
        raise SourceError("allow_private must be true or false")
    base = default if value in (None, "") else value
    if not isinstance(base, str):
        raise SourceError(f"api_base must be the URL of the {service} API")
    parts = urlsplit(base.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SourceError(f"api_base must be an http or https URL of the {service} API, not {base!r}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as error:
        raise SourceError(f"api_base has an invalid port: {base!r}") from error
    if not allow_private:
        refuse_private_host(parts.hostname, port, resolver, action="connect to")
    return base.strip().rstrip("/")
