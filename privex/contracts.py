"""Exceptions plugin implementations raise to tell the core what went wrong, so it can answer the user clearly.

Plugins import these from the core (the core never imports a plugin).
"""

from __future__ import annotations


class UnreadableDocument(ValueError):
    """A parser cannot read a file: empty, corrupt, encrypted, or not what its name says. The message is shown to
    the user (422), so it says what is wrong in their terms: "the PDF is encrypted", "the file is empty"."""


class SourceError(RuntimeError):
    """A source connector could not fetch: refused address, bad credential, the remote API said no. Shown to the
    user. ``transient`` marks failures worth retrying (timeouts, 429, 5xx)."""

    def __init__(self, message: str, *, transient: bool = False):
        super().__init__(message)
        self.transient = transient


class ProviderError(RuntimeError):
    """An embedding model or LLM provider failed. ``status`` is the HTTP status the API answers with (502 when the
    provider answered badly, 504 when it did not answer in time); ``transient`` marks failures worth retrying."""

    def __init__(self, message: str, *, status: int = 502, transient: bool = False):
        super().__init__(message)
        self.status = status
        self.transient = transient
