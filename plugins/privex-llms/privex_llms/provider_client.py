"""How this plugin talks to a remote model server: JSON over HTTP with timeouts, retries and errors the core
understands.

:class:`ProviderClient` posts a JSON body and returns the decoded answer. Rate limits (429), server errors (5xx)
and connection failures are retried with exponential backoff, honouring ``Retry-After`` up to
``MAX_RETRY_AFTER`` seconds; everything else that goes wrong becomes a :class:`privex.contracts.ProviderError`:

- no answer within the timeout: status 504, transient (not retried here: the caller's task may retry later);
- 429 / 5xx / unreachable after the last attempt: 502, transient;
- any other non-2xx (401 bad key, 404 unknown model, 400 bad input): 502, not transient, with the provider's own
  error message;
- a body that is not JSON: 502, not transient.

What the JSON must contain is the caller's business (each provider module checks its own answers). Shared by the
embedding models and, later, the chat providers of this distribution.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import httpx

from privex.contracts import ProviderError

ATTEMPTS = 3
BACKOFF = 0.5  # seconds before the second attempt; doubled before each later one
MAX_RETRY_AFTER = 10.0  # a server asking for a longer pause gets this much: a knowledge base upload should not stall
ERROR_EXCERPT = 300  # characters of a provider's error body quoted in messages


def retryable(status: int) -> bool:
    return status == 429 or status >= 500


def retry_after(response: httpx.Response) -> float | None:
    """Seconds the server asks us to wait (``Retry-After`` as seconds or an HTTP date), or None."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def provider_message(response: httpx.Response) -> str:
    """The provider's own words about an error: Ollama's ``{"error": "..."}``, OpenAI's
    ``{"error": {"message": ...}}``, a ``message`` / ``detail`` field, or the start of the body."""
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict):
            error = error.get("message") or error.get("code") or json.dumps(error)
        error = error or payload.get("message") or payload.get("detail")
        if isinstance(error, str) and error.strip():
            return error.strip()[:ERROR_EXCERPT]
    text = response.text.strip()
    return text[:ERROR_EXCERPT] if text else "no error message"


def _public(url: httpx.URL) -> str:
    """The URL as messages may show it: no user name or password in it."""
    return str(url.copy_with(userinfo=b"")) if url.userinfo else str(url)


class ProviderClient:
    """One remote provider endpoint (``base_url``) spoken to with JSON. ``provider`` names it in error messages.

    ``sleep`` is how the client waits between attempts; tests pass a recorder instead of ``time.sleep``.
    Each call opens its own connection and closes it before returning: a call carries a whole batch (LlamaIndex
    asks for one batch per call), so a handshake per call costs little, and no pooled socket is left for the garbage
    collector or shared with a forked child.
    """

    def __init__(self, provider: str, base_url: str, *, timeout: float, headers: dict[str, str] | None = None,
                 attempts: int = ATTEMPTS, backoff: float = BACKOFF, max_retry_after: float = MAX_RETRY_AFTER,
                 sleep: Callable[[float], Any] = time.sleep):
        self.provider = provider
        self.base_url = httpx.URL(base_url.rstrip("/") + "/")
        self.timeout = timeout
        self.headers = {"Accept": "application/json", **(headers or {})}
        self.attempts = attempts
        self.backoff = backoff
        self.max_retry_after = max_retry_after
        self.sleep = sleep

    def post_json(self, path: str, body: dict[str, Any]) -> Any:
        """POST ``body`` to ``base_url/path`` and return the decoded JSON answer, or raise ProviderError."""
        with httpx.Client(timeout=httpx.Timeout(self.timeout), headers=self.headers) as http:
            return self._post_json(http, self.base_url.join(path.lstrip("/")), body)

    def _post_json(self, http: httpx.Client, url: httpx.URL, body: dict[str, Any]) -> Any:
        where = f"{self.provider} at {_public(url)}"
        failure, cause = "", None  # the last retryable failure
        for attempt in range(1, self.attempts + 1):
            delay = self.backoff * 2 ** (attempt - 1)
            try:
                response = http.post(url, json=body)
            except httpx.TimeoutException as error:
                raise ProviderError(f"{where} did not answer within {self.timeout:g} s", status=504,
                                    transient=True) from error
            except httpx.TransportError as error:
                failure, cause = f"{where} could not be reached: {error or type(error).__name__}", error
            else:
                if response.is_success:
                    try:
                        return response.json()
                    except ValueError as error:
                        excerpt = response.text.strip()[:ERROR_EXCERPT] or "an empty body"
                        raise ProviderError(f"{where} answered with something that is not JSON: {excerpt}",
                                            status=502) from error
                status = f"{response.status_code} {response.reason_phrase}".strip()
                failure, cause = f"{where} answered {status}: {provider_message(response)}", None
                if not retryable(response.status_code):
                    raise ProviderError(failure, status=502, transient=False)
                asked = retry_after(response)
                if asked is not None:
                    delay = asked
            if attempt < self.attempts:
                self.sleep(min(delay, self.max_retry_after))
        tries = f" (after {self.attempts} attempts)" if self.attempts > 1 else ""
        raise ProviderError(failure + tries, status=502, transient=True) from cause
