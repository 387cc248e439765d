"""How this plugin talks to a remote model server: JSON over HTTP with timeouts, retries and errors the core
understands.

:class:`ProviderClient` posts a JSON body and either returns the decoded answer (``post_json``) or yields what a
decoder makes of a streamed answer, line by line, as it arrives (``stream``). Rate limits (429), server errors (5xx)
and connection failures are retried with exponential backoff, honouring ``Retry-After`` up to
``MAX_RETRY_AFTER`` seconds — for a stream, only until its first item has been yielded, since a second request
would repeat what the caller already has. Everything else that goes wrong becomes a
:class:`privex.contracts.ProviderError`:

- no connection or answer within the timeouts: status 504, transient (not retried here: the caller may retry later);
- 429 / 5xx / unreachable after the last attempt, or a stream broken off midway: 502, transient;
- any other non-2xx (401 bad key, 404 unknown model, 400 bad input): 502, not transient, with the provider's own
  error message (and, for 401 / 403, what to do about the API key);
- a body that is not JSON: 502, not transient.

What the JSON must contain is the caller's business (each provider module checks its own answers and stream lines).
Shared by the embedding models and the chat providers of this distribution.
"""

from __future__ import annotations

import contextlib
import email.utils
import functools
import http.cookiejar
import itertools
import json
import os
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any, TypeVar

import httpx

from privex.contracts import ProviderError

ATTEMPTS = 3
BACKOFF = 0.5  # seconds before the second attempt; doubled before each later one
MAX_RETRY_AFTER = 10.0  # a server asking for a longer pause gets this much: a knowledge base upload should not stall
ERROR_EXCERPT = 300  # characters of a provider's error body quoted in messages
TRAILING_LINES = 16  # lines of a stream read after its decoder is done, so that its connection can be kept

T = TypeVar("T")


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


def rejection(where: str, response: httpx.Response, *, keyed: bool) -> str:
    """What to tell the user about a non-2xx answer: the status, the provider's own words and, when the API key is
    at fault, what to do about it. ``keyed`` says whether a key was sent."""
    status = f"{response.status_code} {response.reason_phrase}".strip()
    message = f"{where} answered {status}: {provider_message(response)}"
    if response.status_code == 401:
        message += (" (the API key was refused: check api_key)" if keyed
                    else " (the server wants an API key: set api_key)")
    elif response.status_code == 403:
        message += " (access denied: check that api_key may use this model)"
    return message


def _public(url: httpx.URL) -> str:
    """The URL as messages may show it: no user name or password in it."""
    return str(url.copy_with(userinfo=b"")) if url.userinfo else str(url)


_tls_context: ssl.SSLContext | None = None


def _tls() -> ssl.SSLContext:
    """The TLS settings every client of this process shares (the system's defaults with certifi's CA bundle, as
    httpx makes them). Making them reads the whole CA bundle, about 20 ms of CPU: more than the rest of a call to a
    local model, so it is done once per process, not per call."""
    global _tls_context
    if _tls_context is None:
        _tls_context = httpx.create_ssl_context()  # two threads racing make two equal contexts: harmless
    return _tls_context


class NoCookies(http.cookiejar.CookieJar):
    """A cookie jar that keeps nothing. The client is shared by every bot of the process, whatever its tenant: a
    cookie one provider endpoint set would have gone back to it with other tenants' calls. And keeping cookies cost
    more CPU than anything else httpx does for a streamed answer (``http.cookiejar`` parsing each response)."""

    def extract_cookies(self, response, request) -> None:
        pass

    def set_cookie(self, cookie) -> None:
        pass


@functools.lru_cache(maxsize=1024)
def endpoint(base_url: str, path: str) -> httpx.URL:
    """``path`` under ``base_url``, parsed once: the same few URLs come back with every call, and parsing one cost
    more than a tenth of the client's CPU for a streamed answer."""
    return httpx.URL(base_url.rstrip("/") + "/").join(path.lstrip("/"))


_clients: dict[tuple, httpx.Client] = {}
_clients_lock = threading.Lock()


def shared_client(timeout: float, connect_timeout: float) -> httpx.Client:
    """The ``httpx.Client`` this process uses for calls with these timeouts: its pool keeps connections alive
    between calls. Making a client per call cost more CPU than the rest of a call to a local model (it reads the
    proxy settings from the environment each time), and a connection per call a handshake per chat message.

    Clients are per process: a forked child (a gunicorn or Celery worker) starts with none of its parent's, never
    sharing a socket with it. A pooled connection the server has closed meanwhile fails the next request before
    anything was read, which ``ProviderClient`` retries like any connection failure."""
    key = (os.getpid(), timeout, connect_timeout)
    client = _clients.get(key)
    if client is None:
        with _clients_lock:
            if any(other[0] != key[0] for other in _clients):
                _clients.clear()  # inherited from the parent process: its sockets are not this process's
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = httpx.Client(timeout=httpx.Timeout(timeout, connect=connect_timeout),
                                                      verify=_tls(), cookies=NoCookies())
    return client


def _read_to_the_end(lines: Iterator[str]) -> None:
    """Read what is left of a stream whose decoder has all it needs: what follows OpenAI's ``[DONE]`` or Ollama's
    last chunk (a blank line, the chunked body's end). A response closed before its end closes its connection, so
    every chat answer opened a new one (and, to a remote provider, made a TLS handshake): the pool kept nothing. A
    server that goes on past ``TRAILING_LINES`` lines, or fails now, only loses its connection: the answer is
    already complete."""
    with contextlib.suppress(httpx.HTTPError):
        for _line in itertools.islice(lines, TRAILING_LINES):
            pass


class ProviderClient:
    """One remote provider endpoint (``base_url``) spoken to with JSON. ``provider`` names it in error messages.

    ``timeout`` is how long to wait for each read (the answer, or the next part of a stream) and ``connect_timeout``
    for the connection (``timeout`` when not given). ``sleep`` is how the client waits between attempts; tests pass
    a recorder instead of ``time.sleep``. Calls share one ``httpx.Client`` per process and timeouts
    (``shared_client``), so a chat answer reuses a kept-alive connection to its provider instead of opening one
    (and, for a remote provider, a TLS handshake) per message; headers (the API key) go with each request.
    """

    def __init__(self, provider: str, base_url: str, *, timeout: float, connect_timeout: float | None = None,
                 headers: dict[str, str] | None = None, attempts: int = ATTEMPTS, backoff: float = BACKOFF,
                 max_retry_after: float = MAX_RETRY_AFTER, sleep: Callable[[float], Any] = time.sleep):
        self.provider = provider
        self.base_url = base_url
        endpoint(base_url, "")  # a malformed URL is refused here, when the client is made, as it always was
        self.timeout = timeout
        self.connect_timeout = connect_timeout if connect_timeout is not None else timeout
        self.headers = {"Accept": "application/json", **(headers or {})}
        self.attempts = attempts
        self.backoff = backoff
        self.max_retry_after = max_retry_after
        self.sleep = sleep

    def post_json(self, path: str, body: dict[str, Any]) -> Any:
        """POST ``body`` to ``base_url/path`` and return the decoded JSON answer, or raise ProviderError."""
        with self._http() as http:
            return self._post_json(http, endpoint(self.base_url, path), body)

    @property
    def keyed(self) -> bool:
        return "Authorization" in self.headers

    def _http(self):
        """The process's client for these timeouts, in a ``with`` that leaves it open for the next call."""
        return contextlib.nullcontext(shared_client(self.timeout, self.connect_timeout))

    def _timed_out(self, where: str, error: httpx.TimeoutException, *, streaming: bool = False) -> ProviderError:
        if isinstance(error, httpx.ConnectTimeout):
            message = f"{where} did not accept a connection within {self.connect_timeout:g} s"
        elif streaming:
            message = f"{where} stopped in the middle of its answer: nothing more within {self.timeout:g} s"
        else:
            message = f"{where} did not answer within {self.timeout:g} s"
        return ProviderError(message, status=504, transient=True)

    def _refused(self, where: str, response: httpx.Response, delay: float) -> tuple[str, float]:
        """A failed answer: what to say of it, and how long to wait before the next try (its Retry-After, else
        ``delay``). Raises at once when another try cannot help (any status but 429 and 5xx)."""
        failure = rejection(where, response, keyed=self.keyed)
        if not retryable(response.status_code):
            raise ProviderError(failure, status=502, transient=False)
        asked = retry_after(response)
        return failure, delay if asked is None else asked

    def _gave_up(self, failure: str) -> ProviderError:
        tries = f" (after {self.attempts} attempts)" if self.attempts > 1 else ""
        return ProviderError(failure + tries, status=502, transient=True)

    def _post_json(self, http: httpx.Client, url: httpx.URL, body: dict[str, Any]) -> Any:
        where = f"{self.provider} at {_public(url)}"
        failure, cause = "", None  # the last retryable failure
        for attempt in range(1, self.attempts + 1):
            delay = self.backoff * 2 ** (attempt - 1)
            try:
                response = http.post(url, json=body, headers=self.headers)
            except httpx.TimeoutException as error:
                raise self._timed_out(where, error) from error
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
                (failure, delay), cause = self._refused(where, response, delay), None
            if attempt < self.attempts:
                self.sleep(min(delay, self.max_retry_after))
        raise self._gave_up(failure) from cause

    def stream(self, path: str, body: dict[str, Any], decode: Callable[[Iterator[str]], Iterator[T]]) -> Iterator[T]:
        """POST ``body`` to ``base_url/path`` and yield, as the answer arrives, what ``decode`` makes of its lines
        (text, without line endings); ProviderError when it fails.

        Until ``decode`` has yielded its first item, a failure worth retrying (429, 5xx, the connection refused or
        dropped) is retried as in ``post_json``: a new request read by a fresh ``decode``. After it, every failure
        raises at once: the caller already has what was yielded, and a second answer would repeat it. ``decode``
        raises ProviderError itself for a line it cannot read, which is never retried.
        """
        url = endpoint(self.base_url, path)
        where = f"{self.provider} at {_public(url)}"
        failure, cause = "", None  # the last retryable failure
        with self._http() as http:
            for attempt in range(1, self.attempts + 1):
                delay = self.backoff * 2 ** (attempt - 1)
                started = False
                try:
                    with http.stream("POST", url, json=body, headers=self.headers) as response:
                        if response.is_success:
                            lines = response.iter_lines()
                            for item in decode(lines):
                                started = True
                                yield item
                            _read_to_the_end(lines)
                            return
                        response.read()
                        (failure, delay), cause = self._refused(where, response, delay), None
                except httpx.TimeoutException as error:
                    raise self._timed_out(where, error, streaming=started) from error
                except httpx.TransportError as error:
                    reason = str(error) or type(error).__name__
                    if started:
                        raise ProviderError(f"{where} broke off its answer: {reason}", status=502,
                                            transient=True) from error
                    failure, cause = f"{where} could not be reached: {reason}", error
                except httpx.HTTPError as error:  # e.g. a body that does not decode as its Content-Encoding says
                    raise ProviderError(f"{where} sent an answer that cannot be read: {error}", status=502) from error
                if attempt < self.attempts:
                    self.sleep(min(delay, self.max_retry_after))
        raise self._gave_up(failure) from cause
