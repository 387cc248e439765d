"""PrivexBot's first-party model plugin ``llms``: the embedding models ingestion and retrieval use, and (to come)
the LLM providers chat uses.

- ``privex_llms.embeddings``: all-MiniLM-L6-v2 on the CPU (the offline default), Ollama / Secret AI, and any
  OpenAI-compatible server;
- ``privex_llms.provider_client``: JSON over HTTP with timeouts, retries and ``ProviderError`` mapping, shared by
  every remote provider of this distribution.

Each hook below returns the registry of one concern; a new concern is one more ``@hookimpl`` function here.
"""

from __future__ import annotations

from privex import hookimpl
from privex_llms.embeddings import EMBEDDING_MODELS


@hookimpl
def privex_embedding_models():
    return list(EMBEDDING_MODELS)
