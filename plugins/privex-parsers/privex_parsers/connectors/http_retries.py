"""The HTTP client every connector uses: explicit timeouts, PrivexBot's User-Agent, and retries with backoff when a
server answers 429 or 5xx or cannot be reached.

What a final error response means is each connector's business (Notion's 404 is not Google's); this module raises
``SourceError`` only when the server could not be reached at all, after the last attempt.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime

import httpx

from privex.contracts import SourceError

log = logging.getLogger(__name__)

USER_AGENT = "PrivexBot/0.1 (+self-hosted)"
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
MAX_ATTEMPTS = 3
BACKOFF_SECONDS = 1.0  # doubled after each failed attempt
MAX_RETRY_AFTER_SECONDS = 30.0  # a server asking for longer is asked again after this; a task must not hang

Sleep = Callable[[float], None]


def new_client() -> httpx.Client:
    """A client that never follows redirects by itself: callers that follow them check each target first."""
    return httpx.Client(timeout=TIMEOUT, headers={"User-Agent": USER_AGENT}, follow_redirects=False)


def is_transient(status: int) -> bool:
    """Whether an HTTP status is worth asking again for."""
    return status == 429 or status >= 500


def retry_after_seconds(value: str | None) -> float | None:
    """The delay a ``Retry-After`` header asks for (seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def send(client: httpx.Client, request: httpx.Request, *, sleep: Sleep, stream: bool = False) -> httpx.Response:
    """Send ``request``, retrying up to ``MAX_ATTEMPTS`` times on 429, 5xx, timeouts and connection errors.

    Returns the last response, whatever its status (with ``stream=True`` the caller must close it). Raises a
    transient ``SourceError`` when the server could not be reached on the last attempt.
    """
    for attempt in range(1, MAX_ATTEMPTS + 1):
        backoff = BACKOFF_SECONDS * 2 ** (attempt - 1)
        try:
            response = client.send(request, stream=stream)
        except httpx.TransportError as error:
            if attempt == MAX_ATTEMPTS:
                raise SourceError(f"could not reach {request.url.host}: {describe(error)}", transient=True) from error
            log.info("retrying after a connection failure",
                     extra={"url": str(request.url), "error": describe(error), "attempt": attempt})
            sleep(backoff)
            continue
        if not is_transient(response.status_code) or attempt == MAX_ATTEMPTS:
            return response
        asked = retry_after_seconds(response.headers.get("Retry-After"))
        delay = min(asked if asked is not None else backoff, MAX_RETRY_AFTER_SECONDS)
        log.info("retrying after a transient answer",
                 extra={"url": str(request.url), "status": response.status_code, "delay": delay, "attempt": attempt})
        response.close()
        sleep(delay)
    raise AssertionError("unreachable")  # the loop always returns or raises on its last attempt


def describe(error: httpx.TransportError) -> str:
    """A transport failure in a user's words."""
    if isinstance(error, httpx.TimeoutException):
        return "the connection timed out"
    if isinstance(error, httpx.ConnectError):
        return "the connection failed"
    return f"the connection broke ({type(error).__name__})"
