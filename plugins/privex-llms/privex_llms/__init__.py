"""PrivexBot's first-party model plugin ``llms``: the embedding models ingestion and retrieval use, and the LLM
providers chat uses.

- ``privex_llms.embeddings``: all-MiniLM-L6-v2 on the CPU (the offline default), Ollama / Secret AI, and any
  OpenAI-compatible server;
- ``privex_llms.chat``: ``extractive`` (the offline default, no model), Ollama / Secret AI, and any
  OpenAI-compatible server, each streaming the events of ``privex_llms.chat.events``;
- ``privex_llms.provider_client``: JSON over HTTP, whole or streamed, with timeouts, retries and ``ProviderError``
  mapping, shared by every remote model and provider of this distribution;
- ``privex_llms.settings``: the settings schemas they all check their configuration against.

Each hook below returns the registry of one concern; a new concern is one more ``@hookimpl`` function here.
"""

from __future__ import annotations

from privex import hookimpl
from privex_llms.chat import LLM_PROVIDERS
from privex_llms.embeddings import EMBEDDING_MODELS


@hookimpl
def privex_embedding_models():
    return list(EMBEDDING_MODELS)


@hookimpl
def privex_llm_providers():
    return list(LLM_PROVIDERS)
