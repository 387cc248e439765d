"""Every extension point of PrivexBot, one hookspec each.

A plugin implements hooks with ``from privex import hookimpl``. The registry hooks (all but ``privex_startup``) take
no arguments and return a list of implementations. Each implementation has a ``name`` unique across all plugins
(the core refuses to start, naming both plugins, on a clash) and may carry a ``version``. The core collects them once
at start-up into read-only registries (``privex.plugins.Registries``).

Hooks are always called with keyword arguments, so a later argument added to a spec breaks no plugin.
``docs/plugins.md`` documents each hook with its exact signature; a test keeps the two in step.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("privex")
hookimpl = pluggy.HookimplMarker("privex")


@hookspec
def privex_node_types():
    """Return chatflow node classes.

    Each class has ``name`` (the node ``type`` stored in a chatflow graph), ``version`` (a string, stored with the
    node so a saved flow keeps meaning what it meant), ``config_schema`` (JSON Schema of its settings), ``inputs``
    and ``outputs`` (port names), optionally ``role`` (``"start"``, ``"response"`` or ``"loop"``) and a method
    ``run(ctx, inputs) -> dict`` returning its outputs (``"_port"`` chooses the next edges, ``"_pause"`` asks the
    visitor a question). Used by the chatflow engine (docs/chatflows.md) and the builder's palette.
    """


@hookspec
def privex_vector_stores():
    """Return vector store factories.

    Each has ``name`` and ``create(knowledge_base, embedding_dim) -> llama_index BasePydanticVectorStore``; the
    store it returns reads and writes only that knowledge base's chunks, which it owns: besides ``add``, ``delete``,
    ``clear`` and ``query`` it answers ``summary(document_id=None)`` and ``chunks(document_id, offset=, limit=)``
    (docs/plugins.md). Used by ingestion, retrieval, analytics and the chunk listing.
    """


@hookspec
def privex_document_parsers():
    """Return document parsers.

    Each has ``name``, ``extensions`` (e.g. ``(".pdf",)``), ``mime_types`` and
    ``parse(stream, filename) -> list[llama_index Document]``, keeping titles, pages or headings as metadata.
    Used by uploads.
    """


@hookspec
def privex_source_connectors():
    """Return source connectors (web crawl, Notion, Google Docs, ...).

    Each has ``name``, ``config_schema`` and ``fetch(config, credential) -> Iterator[llama_index Document]``, where
    ``credential`` is the decrypted stored credential or ``None``. Used by knowledge base drafts.
    """


@hookspec
def privex_chunkers():
    """Return chunkers.

    Each has ``name``, ``config_schema`` and ``create(**config) -> llama_index NodeParser`` (token, sentence,
    semantic, parent-child, ...). Used by ingestion; the knowledge base stores the chunker name and its config.
    """


@hookspec
def privex_embedding_models():
    """Return embedding models.

    Each has ``name``, ``dimension`` and ``create(**config) -> llama_index BaseEmbedding``. Used by ingestion and
    retrieval; the knowledge base stores the model name so its queries embed with the model its chunks used.
    Optional ``local = True`` says it computes in this process: web and Celery workers run it once as they start.
    """


@hookspec
def privex_llm_providers():
    """Return LLM providers.

    Each has ``name``, ``version``, ``config_schema`` (JSON Schema of its settings: ``base_url``, ``api_key``,
    ``model``, ``timeout``, ...; secrets marked ``writeOnly``) and
    ``chat(messages, params, *, context=None) -> Iterator[ChatEvent]``:

    - ``messages``: the conversation, oldest first, as ``{"role": "system" | "user" | "assistant", "content": str}``;
      the last ``user`` message is the question.
    - ``params``: model parameters and settings (``model``, ``temperature``, ``max_tokens``, ``base_url``,
      ``api_key``, ``timeout``, ...) fitting ``config_schema``; what it leaves out takes the schema's default.
    - ``context``: the retrieved chunks for grounding, best first, as dicts with ``text``, ``document_name``,
      ``position`` and ``score``. A provider without a model (``extractive``) answers from it; an LLM ignores it,
      because the chat service puts the context into the system prompt itself. A citation marker ``[n]`` in an
      answer refers to ``context[n - 1]``.

    ``chat`` checks its arguments when called and raises ValueError naming what is wrong, before anything is sent.
    The iterator it returns yields text deltas ``{"type": "delta", "text": str}`` (never empty) in order as they
    arrive, their texts joined being the answer, then exactly one
    ``{"type": "done", "usage": {"prompt_tokens": int, "completion_tokens": int, "total_tokens": int,
    "estimated": bool}, "model": str, "finish_reason": str}``, and nothing after it. ``usage`` comes from the
    provider, or is counted with a tokenizer (``estimated`` true) when it gives none. ``finish_reason`` is
    ``"stop"``, ``"length"`` (cut at ``max_tokens``), ``"no_answer"`` (nothing relevant in ``context``: a fallback
    message was given) or another reason the provider names. A failure raises ``privex.contracts.ProviderError``,
    possibly after some deltas: ``status`` 502 (refused, bad API key, bad or broken answer) or 504 (timed out),
    ``transient`` when trying again later may work. A provider retries only before its first delta, so streamed
    text is never repeated. Used by chat and the chatflow LLM node.
    """


@hookspec
def privex_channels():
    """Return messaging channels (Telegram, Discord, WhatsApp, Slack, webhooks, ...).

    Each has ``name`` and the methods ``verify(request, config) -> bool``, ``parse(request) -> incoming message``,
    ``send(config, chat_id, text)``, ``register(config, url)`` and ``unregister(config)``. Used by deployments.
    """


@hookspec
def privex_startup(app):
    """Called once by ``create_app`` after the core is wired, with the Flask ``app``.

    Lets a plugin register a blueprint, an admin view, a CLI command or a template folder. Returns nothing.
    """
