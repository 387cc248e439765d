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

    Each class has ``name`` (the node ``type`` stored in a chatflow graph), ``config_schema`` (JSON Schema of its
    settings), ``inputs`` and ``outputs`` (port names) and a method ``run(ctx, inputs) -> dict`` returning its
    outputs. Used by the chatflow engine and the builder's palette.
    """


@hookspec
def privex_vector_stores():
    """Return vector store factories.

    Each has ``name`` and ``create(knowledge_base, embedding_dim) -> llama_index BasePydanticVectorStore``; the
    store it returns reads and writes only that knowledge base's vectors. Used by ingestion and retrieval.
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
    """


@hookspec
def privex_llm_providers():
    """Return LLM providers.

    Each has ``name`` and ``chat(messages, params) -> Iterator[delta]`` yielding text deltas and finally the token
    usage. Used by chat and the chatflow LLM node.
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
