"""What goes into an LLM provider's ``chat`` and what comes out of it: the contract of the ``privex_llm_providers``
hook, as types.

``chat(messages, params, *, context=None)`` takes :class:`Message` dicts (and, for grounding, :class:`ContextChunk`
dicts) and yields :data:`ChatEvent` dicts: zero or more :class:`Delta` events, the answer's text in order as it
arrives (their ``text`` joined is the whole answer), then exactly one :class:`Done`. Nothing follows ``Done``; a
failure raises ``privex.contracts.ProviderError`` instead of ending with it.

They are TypedDicts, that is plain dicts, so the chat service can send them on as JSON (server-sent events) as they
are. :func:`delta` and :func:`done` build them.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

Role = Literal["system", "user", "assistant"]
ROLES: tuple[str, ...] = ("system", "user", "assistant")


class Message(TypedDict):
    """One turn of the conversation, oldest first; the last ``user`` message is the question."""

    role: Role
    content: str


class ContextChunk(TypedDict):
    """A retrieved chunk for grounding, best first. Only ``text`` is required: ``document_name`` and ``position``
    (page, heading or chunk index) say where it comes from, ``score`` is its retrieval score. A citation marker
    ``[n]`` in an answer refers to the n-th chunk of the list (1-based)."""

    text: str
    document_name: NotRequired[str | None]
    position: NotRequired[int | str | None]
    score: NotRequired[float | None]


class Delta(TypedDict):
    """The next piece of the answer's text, never empty."""

    type: Literal["delta"]
    text: str


class Usage(TypedDict):
    """Tokens the answer cost. ``estimated`` is True when any count was not given by the provider but counted
    here with a tokenizer (see ``privex_llms.chat.tokens``)."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    estimated: bool


class Done(TypedDict):
    """The last event: the token usage, the model that answered (as the provider names it) and why it stopped —
    ``"stop"`` (a natural end), ``"length"`` (cut at ``max_tokens``), ``"no_answer"`` (``extractive`` found nothing
    relevant and answered with its ``fallback_message``), or another reason the provider gives
    (``"content_filter"``, ...)."""

    type: Literal["done"]
    usage: Usage
    model: str
    finish_reason: str


ChatEvent = Delta | Done


def delta(text: str) -> Delta:
    return {"type": "delta", "text": text}


def usage(prompt_tokens: int, completion_tokens: int, *, estimated: bool) -> Usage:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens, "estimated": estimated}


def done(usage: Usage, model: str, finish_reason: str) -> Done:
    return {"type": "done", "usage": usage, "model": model, "finish_reason": finish_reason}
