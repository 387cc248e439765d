"""The guard against server-side request forgery: a URL a tenant typed must not make PrivexBot's server reach
machines on its own private network (databases, cloud metadata at 169.254.169.254, admin consoles on localhost).

One guard for everything that goes out on a tenant's behalf: source connectors (plugins import it from here, the
core imports no plugin) and the chatflow nodes' HTTP and database access (services/chatflows/outbound.py).

A host is checked by resolving it and refusing it when any of its addresses is not a public one. The resolver is
injectable so tests can make a local test server look public, or a public name look private.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable

from privex.contracts import SourceError

# (host, port) -> the IP addresses it resolves to, as strings
Resolver = Callable[[str, int], list[str]]


def system_resolver(host: str, port: int) -> list[str]:
    """Resolve ``host`` with the operating system, as the HTTP client will."""
    return [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def is_public_address(address: str) -> bool:
    """False for loopback, private, link-local, multicast, reserved, unspecified and other non-global addresses."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone ("fe80::1%eth0") is not part of the address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 reaches 127.0.0.1
    return ip.is_global and not (
        ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast or ip.is_reserved or ip.is_unspecified
    )


def refuse_private_host(host: str, port: int, resolver: Resolver, *, action: str = "crawl") -> list[str]:
    """Raise ``SourceError`` unless every address ``host`` resolves to is public; return those addresses, so a
    caller can connect to one of them rather than resolve again (a second answer may differ: DNS rebinding).

    ``action`` completes the message: "refusing to <action> <host>: ...".
    """
    try:
        addresses = resolver(host, port)
    except socket.gaierror as error:
        # EAI_AGAIN is a DNS server that did not answer in time; anything else means the name does not exist.
        raise SourceError(f"could not find the host {host}", transient=error.errno == socket.EAI_AGAIN) from error
    except (UnicodeError, OSError) as error:
        raise SourceError(f"could not find the host {host}") from error
    if not addresses:
        raise SourceError(f"could not find the host {host}")
    for address in addresses:
        try:
            public = is_public_address(address)
        except ValueError:
            public = False
        if not public:
            raise SourceError(f"refusing to {action} {host}: it resolves to a private or loopback address")
    return addresses
