"""The ``ollama`` provider: a local Ollama server, or Secret AI's confidential endpoints, which speak the same API
behind ``Authorization: Bearer <api_key>``.

``POST {base_url}/api/chat`` with ``{"model", "messages", "stream": true, "options": {...}}`` answers newline-
delimited JSON: ``{"message": {"role": "assistant", "content": "..."}, "done": false}`` per piece of text, then
``{"done": true, "done_reason": "stop", "prompt_eval_count": n, "eval_count": n, ...}``. An ``{"error": "..."}``
line is the server failing midway. ``max_tokens`` is sent as ``options.num_predict``. Ollama leaves
``prompt_eval_count`` out when the whole prompt was cached; what it leaves out is estimated.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from privex.contracts import ProviderError
from privex_llms.chat.events import ChatEvent, Message, delta, done
from privex_llms.chat.remote import RemoteChatProvider, remote_settings, token_count
from privex_llms.chat.tokens import estimated_usage
from privex_llms.provider_client import ERROR_EXCERPT

NAME = "ollama"
BASE_URL = "http://127.0.0.1:11434"
MODEL_NAME = "llama3.2"
OPTIONS = {"temperature": "temperature", "top_p": "top_p", "max_tokens": "num_predict"}  # setting -> option


class OllamaProvider(RemoteChatProvider):
    name: ClassVar[str] = NAME
    description: ClassVar[str] = "Any chat model on an Ollama server, or on Secret AI's confidential Ollama endpoints"
    properties: ClassVar[dict[str, dict[str, Any]]] = remote_settings(
        base_url=BASE_URL, model=MODEL_NAME,
        api_key="Bearer token for servers that need one (Secret AI); none for a local Ollama")

    def _request(self, messages: list[Message], settings: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {"model": settings["model"], "messages": messages, "stream": True}
        options = {option: settings[key] for key, option in OPTIONS.items() if settings[key] is not None}
        if options:
            body["options"] = options
        return "api/chat", body

    def _decode(self, lines: Iterator[str], messages: list[Message],
                settings: dict[str, Any]) -> Iterator[ChatEvent]:
        text: list[str] = []
        for line in lines:
            if not line.strip():
                continue
            chunk = self.chunk_of(line, settings)
            if chunk.get("error"):
                raise ProviderError(f"{self.where(settings)} failed while answering: "
                                    f"{str(chunk['error'])[:ERROR_EXCERPT]}", status=502)
            message = chunk.get("message") or {}  # the last chunk may have none
            content = (message.get("content") or "") if isinstance(message, dict) else None
            if not isinstance(content, str):
                raise self.malformed(f'a chunk has no "message" with a "content" string: {line[:80]!r}', settings)
            if content:
                text.append(content)
                yield delta(content)
            if chunk.get("done") is True:
                answer = "".join(text)
                usage = estimated_usage(messages, answer, prompt=token_count(chunk.get("prompt_eval_count")),
                                        completion=token_count(chunk.get("eval_count")))
                reason = chunk.get("done_reason")
                yield done(usage, str(chunk.get("model") or settings["model"]),
                           reason if isinstance(reason, str) and reason else "stop")
                return
        raise self.cut_short(settings, sum(map(len, text)))


PROVIDER = OllamaProvider()
