"""The ``openai`` provider: any OpenAI-compatible server (OpenAI itself, vLLM, LM Studio, llama.cpp server,
LiteLLM, ...).

``POST {base_url}/chat/completions`` with ``{"model", "messages", "stream": true,
"stream_options": {"include_usage": true}}`` answers server-sent events, one JSON object per ``data:`` line:
``{"choices": [{"delta": {"content": "..."}, "finish_reason": null}], "model": ...}``, a last chunk with
``"usage"`` (and ``"choices": []``) when usage was asked for, then ``data: [DONE]``. Comments (``: keep-alive``),
blank lines and other fields (``event:``, ``id:``) are skipped. Servers that send no usage get it estimated;
``include_usage: false`` leaves ``stream_options`` out for servers that refuse it. Only the first choice is read.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from privex.contracts import ProviderError
from privex_llms.chat.events import ChatEvent, Message, delta, done
from privex_llms.chat.remote import RemoteChatProvider, remote_settings, token_count
from privex_llms.chat.tokens import estimated_usage
from privex_llms.provider_client import ERROR_EXCERPT
from privex_llms.settings import setting

NAME = "openai"
BASE_URL = "https://api.openai.com/v1"
MODEL_NAME = "gpt-4o-mini"
PARAMETERS = ("temperature", "top_p", "max_tokens")  # sent under their own names when set


class OpenAIProvider(RemoteChatProvider):
    name: ClassVar[str] = NAME
    description: ClassVar[str] = "Any chat model on an OpenAI-compatible server"
    properties: ClassVar[dict[str, dict[str, Any]]] = {
        **remote_settings(base_url=BASE_URL, model=MODEL_NAME,
                          api_key="Bearer token; OpenAI needs one, many self-hosted servers do not"),
        "include_usage": setting("boolean", True, "Ask for the token usage at the end of the stream "
                                 "(stream_options); turn off for a server that refuses it"),
    }

    def _request(self, messages: list[Message], settings: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {"model": settings["model"], "messages": messages, "stream": True}
        if settings["include_usage"]:
            body["stream_options"] = {"include_usage": True}
        body.update({key: settings[key] for key in PARAMETERS if settings[key] is not None})
        return "chat/completions", body

    def _decode(self, lines: Iterator[str], messages: list[Message],
                settings: dict[str, Any]) -> Iterator[ChatEvent]:
        text: list[str] = []
        model, finish_reason, reported = settings["model"], None, None
        for line in lines:
            field, _, data = line.partition(":")
            if field != "data":  # a blank line between events, a ": comment", an "event:" or "id:" field
                continue
            data = data.removeprefix(" ")
            if data.strip() == "[DONE]":
                break
            chunk = self.chunk_of(data, settings)
            if chunk.get("error") or chunk.get("object") == "error":
                error = chunk.get("error") or chunk
                if isinstance(error, dict):
                    error = error.get("message") or error
                raise ProviderError(f"{self.where(settings)} failed while answering: {str(error)[:ERROR_EXCERPT]}",
                                    status=502)
            if isinstance(chunk.get("model"), str) and chunk["model"]:
                model = chunk["model"]
            if isinstance(chunk.get("usage"), dict):
                reported = chunk["usage"]
            choices = chunk.get("choices") or []
            if not isinstance(choices, list) or not all(isinstance(choice, dict) for choice in choices):
                raise self.malformed(f'"choices" is not a list of objects: {data[:80]!r}', settings)
            for choice in choices:
                if choice.get("index", 0) != 0:
                    continue
                piece = choice.get("delta") or {}
                content = piece.get("content") if isinstance(piece, dict) else piece
                if not isinstance(piece, dict) or (content is not None and not isinstance(content, str)):
                    raise self.malformed(f'a "delta" content is not a string: {data[:80]!r}', settings)
                if content:
                    text.append(content)
                    yield delta(content)
                if choice.get("finish_reason"):
                    finish_reason = str(choice["finish_reason"])
        else:
            if finish_reason is None:  # no [DONE] and no finish reason: the stream was cut
                raise self.cut_short(settings, sum(map(len, text)))
        reported = reported or {}
        usage = estimated_usage(messages, "".join(text), prompt=token_count(reported.get("prompt_tokens")),
                                completion=token_count(reported.get("completion_tokens")))
        yield done(usage, model, finish_reason or "stop")


PROVIDER = OpenAIProvider()
