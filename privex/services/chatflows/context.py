"""What the engine hands every node: core services injected by the caller as plain functions.

Node modules never import ``privex.services``; they call ``ctx.llm``, ``ctx.retrieve``, ``ctx.memory_get``,
``ctx.run_code``, ``ctx.http``, ``ctx.credential``, ``ctx.sql`` ... A function the caller did not give is a clear
error when a node needs it, never a silent fallback. (services/chatflows/outbound.py builds the outbound ones.)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class NodeContext:
    llm_fn: Callable | None = None          # (messages, provider_config) -> str
    llm_stream_fn: Callable | None = None   # (messages, provider_config) -> iterator of text pieces
    retrieve_fn: Callable | None = None     # (kb_ids, query, mode, top_k) -> list[chunk dict]
    code_fn: Callable | None = None         # (code, inputs) -> dict, in the sandbox (sandbox.run_code)
    http_fn: Callable | None = None         # (method, url, headers, body, timeout) -> {status, headers, body, ...}
    credential_fn: Callable | None = None   # (credential_id) -> decrypted secret dict of the flow's workspace
    sql_fn: Callable | None = None          # (credential_id, query, params, max_rows, timeout) -> {rows, ...}
    memory: dict = field(default_factory=dict)
    env: dict = field(default_factory=dict)  # whitelisted environment only
    budgets: dict = field(default_factory=dict)
    node_id: str = ""
    config: dict = field(default_factory=dict)
    variables: dict = field(default_factory=dict)
    registry: dict = field(default_factory=dict)
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("privex.chatflows"))

    def llm(self, messages, provider: dict | None = None) -> str:
        if self.llm_fn is None:
            raise RuntimeError("No language model is available to this chatflow.")
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        return self.llm_fn(messages, provider or {})

    def llm_stream(self, messages, provider: dict | None = None):
        """The answer in pieces as the model writes them; one piece from ``llm`` when the caller gave no stream."""
        if self.llm_stream_fn is None:
            yield self.llm(messages, provider)
            return
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        yield from self.llm_stream_fn(messages, provider or {})

    def retrieve(self, kb_ids, query, mode="hybrid", top_k=4) -> list[dict]:
        if self.retrieve_fn is None:
            raise RuntimeError("No knowledge base is available to this chatflow.")
        return self.retrieve_fn(kb_ids, query, mode, top_k)

    def run_code(self, code: str, inputs: dict) -> dict:
        if self.code_fn is None:
            raise RuntimeError("Running code is not available to this chatflow.")
        return self.code_fn(code, inputs)

    def http(self, method: str, url: str, headers: dict | None = None, body=None, timeout: float = 10.0) -> dict:
        if self.http_fn is None:
            raise RuntimeError("HTTP requests are not available to this chatflow.")
        return self.http_fn(method, url, headers, body, timeout)

    def credential(self, credential_id) -> dict:
        if self.credential_fn is None:
            raise RuntimeError("Stored credentials are not available to this chatflow.")
        return self.credential_fn(credential_id)

    def sql(self, credential_id, query: str, params=None, max_rows: int = 100, timeout: float = 5.0) -> dict:
        if self.sql_fn is None:
            raise RuntimeError("Database queries are not available to this chatflow.")
        return self.sql_fn(credential_id, query, params, max_rows, timeout)

    def memory_get(self, key, default=None):
        return self.memory.get(key, default)

    def memory_set(self, key, value):
        self.memory[key] = value
