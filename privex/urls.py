"""This install's public address (``PRIVEX_PUBLIC_URL``): the one source for links and origins the app states.

What a request says about where it was sent (its ``Host`` header, ``request.host_url``) is chosen by whoever sends
it: a phishing site can send ``Host: evil.example``. So a wallet challenge's domain, the links the API hands out
and the "this app's own page" origin come from here, never from the request.

``check_public_url`` runs once at start-up (``create_app``); the other functions read the checked value.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app

DEFAULT_PORTS = {"http": 80, "https": 443}
# A server bound to every address is not reached at that address; the local default is the loopback one.
WILDCARD_HOSTS = {"0.0.0.0", "::", ""}


def default_public_url(host: str, port: int) -> str:
    """Where ``privex serve`` can be reached on this machine, from PRIVEX_HOST / PRIVEX_PORT."""
    host = "127.0.0.1" if host in WILDCARD_HOSTS else host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address
    return f"http://{host}:{port}"


def check_public_url(value: str) -> str:
    """``value`` as an origin (``scheme://host[:port]``, lower case, no default port), else ``ValueError``.

    The error names the setting and what is wrong, since it stops the app from starting."""
    problem = "PRIVEX_PUBLIC_URL must be the address people reach this install at, like https://bots.example.com"
    try:
        parts = urlsplit(value.strip())
        port = parts.port  # ValueError for a port that is not a number in range
    except (AttributeError, ValueError):
        raise ValueError(f"{problem}; got {value!r}") from None
    if parts.scheme.lower() not in DEFAULT_PORTS:
        raise ValueError(f"{problem}: the scheme must be http or https; got {value!r}")
    if not parts.hostname:
        raise ValueError(f"{problem}: it names no host; got {value!r}")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{problem}: no user name or password; got {value!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment or value.strip().endswith(("?", "#")):
        raise ValueError(f"{problem}: only an origin, with no path, query or fragment (the app is served at /); "
                         f"got {value!r}")
    scheme = parts.scheme.lower()
    host = parts.hostname  # urlsplit lower-cases it and drops an IPv6 address's brackets
    host = f"[{host}]" if ":" in host else host
    if port is not None and port != DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    return f"{scheme}://{host}"


def init_app(app) -> None:
    """Check ``PUBLIC_URL`` (or derive the local default) and keep it in its checked form."""
    configured = app.config.get("PUBLIC_URL") or default_public_url(app.config["HOST"], app.config["PORT"])
    app.config["PUBLIC_URL"] = check_public_url(configured)


def public_origin() -> str:
    """``https://bots.example.com``: the scheme, host and port browsers show as this install's origin."""
    return current_app.config["PUBLIC_URL"]


def public_host() -> str:
    """``bots.example.com`` (with ``:port`` when not the default): the authority, as EIP-4361's ``domain``."""
    return public_origin().split("://", 1)[1]


def public_url(path: str = "") -> str:
    """An absolute link to ``path`` (starting with ``/``) on this install."""
    return public_origin() + path
