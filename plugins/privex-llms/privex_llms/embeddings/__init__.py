"""Embedding models of the ``llms`` plugin, one module each:

- ``local``: all-MiniLM-L6-v2 bundled with the distribution, on the CPU, offline (the default);
- ``ollama``: a local Ollama, or Secret AI's confidential endpoints;
- ``openai``: any OpenAI-compatible server.

``remote`` holds what the two remote ones share; ``embedding_model`` the descriptor the hook returns. Importing
this package loads neither PyTorch nor the model: the local model is loaded on first use.
"""

from __future__ import annotations

from privex_llms.embeddings import local, ollama, openai
from privex_llms.embeddings.embedding_model import EmbeddingModel

EMBEDDING_MODELS: tuple[EmbeddingModel, ...] = (local.MODEL, ollama.MODEL, openai.MODEL)

__all__ = ["EMBEDDING_MODELS", "EmbeddingModel"]
