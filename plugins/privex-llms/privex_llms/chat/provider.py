"""What every LLM provider of this distribution is: a named object with a ``config_schema`` and
``chat(messages, params, *, context=None)``, which checks its arguments at once (ValueError naming what is wrong)
and returns an iterator of chat events that does the work as it is read.

A provider module subclasses :class:`ChatProvider` and writes ``_answer``. Whatever goes wrong while answering raises
``privex.contracts.ProviderError``; a bad argument is the caller's mistake and raises ValueError before anything is
sent anywhere.
"""

from __future__ import annotations

import importlib.metadata
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

from privex_llms.chat.events import ROLES, ChatEvent, ContextChunk, Message
from privex_llms.settings import checked, schema_of

VERSION = importlib.metadata.version("privex-llms")


class ChatProvider:
    """An LLM provider. ``name`` is its registry name; ``properties`` the settings ``params`` may hold, each with
    its default; ``config_schema`` the JSON Schema made of them. ``sleep`` is how it waits before retrying (tests
    pass a recorder)."""

    name: ClassVar[str]
    description: ClassVar[str]
    properties: ClassVar[dict[str, dict[str, Any]]]
    version: ClassVar[str] = VERSION

    def __init__(self, *, sleep: Callable[[float], Any] = time.sleep):
        self.sleep = sleep

    @property
    def config_schema(self) -> dict[str, Any]:
        return schema_of(self.properties)

    def settings(self, params: Mapping[str, Any] | None) -> dict[str, Any]:
        """``params`` checked against ``config_schema``, with the defaults of what it leaves out. An unknown
        setting or a bad value raises ValueError naming it (so a chatbot's settings can be checked when saved)."""
        return checked(f"LLM provider {self.name!r}", self.properties, dict(params or {}))

    def chat(self, messages: list[Message], params: Mapping[str, Any] | None, *,
             context: list[ContextChunk] | None = None) -> Iterator[ChatEvent]:
        """Answer the conversation ``messages``: text deltas as they come, then one ``done`` event."""
        settings = self.settings(params)
        return self._answer(checked_messages(messages), settings, checked_context(context))

    def _answer(self, messages: list[Message], settings: dict[str, Any],
                context: list[ContextChunk]) -> Iterator[ChatEvent]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<LLM provider {self.name!r} {self.version}>"


def checked_messages(messages: Any) -> list[Message]:
    """``messages`` as a list of ``{"role", "content"}`` dicts, or ValueError saying which one is wrong."""
    if not isinstance(messages, (list, tuple)) or not messages:
        raise ValueError("messages must be a non-empty list of {'role', 'content'} dicts")
    result: list[Message] = []
    for number, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise ValueError(f"messages[{number}] must be a dict with 'role' and 'content', got {message!r:.60}")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise ValueError(f"messages[{number}]: role must be one of {', '.join(ROLES)}, got {role!r:.40}")
        if not isinstance(content, str):
            raise ValueError(f"messages[{number}]: content must be a string, got {type(content).__name__}")
        result.append({"role": role, "content": content})
    if not any(message["role"] == "user" for message in result):
        raise ValueError("messages hold no 'user' message: there is nothing to answer")
    return result


def checked_context(context: Any) -> list[ContextChunk]:
    """``context`` as a list of chunk dicts with a ``text`` (None is no context), or ValueError."""
    if context is None:
        return []
    if not isinstance(context, (list, tuple)):
        raise ValueError(f"context must be a list of chunk dicts, got {type(context).__name__}")
    for number, chunk in enumerate(context):
        if not isinstance(chunk, Mapping) or not isinstance(chunk.get("text"), str):
            raise ValueError(f"context[{number}] must be a dict with a 'text' string")
    return list(context)


def last_question(messages: list[Message]) -> str:
    """The content of the last ``user`` message."""
    return next(message["content"] for message in reversed(messages) if message["role"] == "user")
