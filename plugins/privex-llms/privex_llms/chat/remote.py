"""What the two remote LLM providers (Ollama and OpenAI-compatible) share: their settings, the streaming HTTP
client (``ProviderClient.stream``: timeouts, retries before the first delta, ``ProviderError`` mapping), reading
a stream line as JSON, and the usage — the provider's counts, estimated when it gives none.

A subclass says how to ask (``_request``) and how to read its stream (``_decode``: lines in, chat events out,
``ProviderError`` for a line it cannot read or a stream that ends before its last chunk). ``context`` is ignored:
the chat service puts the retrieved chunks into the system prompt itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from privex.contracts import ProviderError
from privex_llms.chat.events import ChatEvent, ContextChunk, Message
from privex_llms.chat.provider import ChatProvider
from privex_llms.provider_client import ERROR_EXCERPT, ProviderClient
from privex_llms.settings import setting

TIMEOUT = 120.0  # a local model may take this long to load and start answering on a CPU
CONNECT_TIMEOUT = 10.0


class RemoteChatProvider(ChatProvider):
    def _answer(self, messages: list[Message], settings: dict[str, Any],
                context: list[ContextChunk]) -> Iterator[ChatEvent]:
        api_key = settings["api_key"]
        client = ProviderClient(self.name, settings["base_url"], timeout=settings["timeout"],
                                connect_timeout=settings["connect_timeout"],
                                headers={"Authorization": f"Bearer {api_key}"} if api_key else {}, sleep=self.sleep)
        path, body = self._request(messages, settings)
        return client.stream(path, body, lambda lines: self._decode(lines, messages, settings))

    def _request(self, messages: list[Message], settings: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The path (relative to ``base_url``) and JSON body that ask for a streamed answer to ``messages``."""
        raise NotImplementedError

    def _decode(self, lines: Iterator[str], messages: list[Message],
                settings: dict[str, Any]) -> Iterator[ChatEvent]:
        """The chat events in the stream's ``lines``: deltas, then one ``done``."""
        raise NotImplementedError

    def where(self, settings: dict[str, Any]) -> str:
        return f"{self.name} model {settings['model']!r}"

    def chunk_of(self, data: str, settings: dict[str, Any]) -> dict[str, Any]:
        """One stream line's JSON object, or a 502 ProviderError quoting the line."""
        try:
            chunk = json.loads(data)
        except ValueError:
            chunk = None
        if not isinstance(chunk, dict):
            raise ProviderError(f"{self.where(settings)} sent a stream line that is not a JSON object: "
                                f"{data.strip()[:ERROR_EXCERPT]!r}", status=502)
        return chunk

    def malformed(self, problem: str, settings: dict[str, Any]) -> ProviderError:
        return ProviderError(f"{self.where(settings)} sent a malformed stream: {problem}", status=502)

    def cut_short(self, settings: dict[str, Any], received: int) -> ProviderError:
        return ProviderError(f"{self.where(settings)} ended its answer before it was complete, after "
                             f"{received} characters", status=502, transient=True)


def token_count(value: Any) -> int | None:
    """A token count a provider reported, or None when it is missing or not a count."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def remote_settings(*, base_url: str, model: str, api_key: str) -> dict[str, dict[str, Any]]:
    """The ``config_schema`` properties of a remote LLM provider, with its defaults and what its key is for."""
    return {
        "base_url": setting("string", base_url, "Where the server's API is", minLength=1, pattern=r"^https?://\S+$",
                            patternDescription="be an http:// or https:// URL"),
        "api_key": setting(["string", "null"], None, api_key, writeOnly=True),
        "model": setting("string", model, "The model's name on that server", minLength=1),
        "temperature": setting(["number", "null"], None, "Sampling temperature; none: the model's default",
                               minimum=0, maximum=2),
        "top_p": setting(["number", "null"], None, "Nucleus sampling; none: the model's default",
                         minimum=0, maximum=1),
        "max_tokens": setting(["integer", "null"], None, "Most tokens in the answer; none: the model's limit",
                              minimum=1),
        "timeout": setting("number", TIMEOUT, "Seconds to wait for the answer to start, and then for each next "
                           "part of it", exclusiveMinimum=0),
        "connect_timeout": setting("number", CONNECT_TIMEOUT, "Seconds to wait for a connection",
                                   exclusiveMinimum=0),
    }
