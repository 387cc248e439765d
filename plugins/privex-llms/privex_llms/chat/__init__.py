"""LLM providers of the ``llms`` plugin, one module each:

- ``extractive``: the offline default, no model: quotes the retrieved sentences that answer the question;
- ``ollama``: a local Ollama, or Secret AI's confidential endpoints;
- ``openai``: any OpenAI-compatible server.

``events`` holds the contract's types (what ``chat`` takes and yields), ``provider`` the base class and argument
checks, ``remote`` what the two remote ones share, ``tokens`` the token estimate, ``sentences`` how ``extractive``
reads chunks. Importing this package loads no tokenizer: that happens on the first estimate.
"""

from __future__ import annotations

from privex_llms.chat import extractive, ollama, openai
from privex_llms.chat.provider import ChatProvider

LLM_PROVIDERS: tuple[ChatProvider, ...] = (extractive.PROVIDER, ollama.PROVIDER, openai.PROVIDER)

__all__ = ["LLM_PROVIDERS", "ChatProvider"]
