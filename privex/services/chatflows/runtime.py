"""Where the chatflow engine meets the core: the NodeContext a workspace's flow runs with (its LLM providers, its
knowledge bases, session memory, the whitelisted environment, the code sandbox, guarded HTTP and SQL, the workspace's
credentials) and the catalogue of installed node types.

The engine and the nodes never import services; this module is the one place that hands services to them, as plain
functions. Token usage of every LLM call a flow makes is collected on the context (``ctx.usage``) for the caller to
store with the answer.
"""

from __future__ import annotations

import inspect
import os
import uuid
from dataclasses import dataclass

from flask import current_app

from privex.contracts import ProviderError
from privex.extensions import db, state
from privex.models import Workspace
from privex.services import chatbots
from privex.services.chatflows import engine, outbound
from privex.services.chatflows.context import NodeContext
from privex.services.errors import Invalid
from privex.services.retrieval import retrieve

MODES = {"semantic": "vector", "vector": "vector", "keyword": "keyword", "hybrid": "hybrid"}


def registry():
    return state().plugins.node_types


def catalogue() -> list[dict]:
    """Every installed node type (third-party ones too), as the canvas's palette and forms need it."""
    types = registry()
    entries = []
    for name in sorted(types):
        cls = types[name]
        doc = inspect.getdoc(cls) or ""
        entries.append({"type": name, "version": str(getattr(cls, "version", "1")), "role": getattr(cls, "role", None),
                        "inputs": list(getattr(cls, "inputs", ())), "outputs": list(getattr(cls, "outputs", ())),
                        "config_schema": getattr(cls, "config_schema", {"type": "object"}),
                        "description": doc.split("\n\n")[0].replace("\n", " "), "plugin": types.owner(name)})
    return entries


def flow_env() -> dict:
    """The environment variables the operator lets flows read (``PRIVEX_CHATFLOW_ENV``), nothing else."""
    return {name: os.environ[name] for name in current_app.config.get("CHATFLOW_ENV") or [] if name in os.environ}


@dataclass(frozen=True)
class Tenant:
    """What the services a flow's nodes call read of its workspace: its id and its organization's."""

    id: uuid.UUID
    organization_id: uuid.UUID


def context_for(workspace: Workspace, config: dict | None = None, memory: dict | None = None) -> NodeContext:
    """A NodeContext for one run of a flow of ``workspace``: ``config`` is the flow's deployment settings, whose
    provider, model parameters and credential are the default of every llm node (a node's own ``provider`` object
    overrides them key by key).

    The nodes run while the answer streams, after the request's ORM objects may have been expired by a commit or
    detached from their session: the context keeps the workspace as plain ids (``Tenant``), never the row."""
    workspace = Tenant(id=workspace.id, organization_id=workspace.organization_id)
    defaults = chatbots.resolve_config(workspace, {}, {}) if config is None else config
    usage: list[dict] = []

    def llm_stream(messages, provider: dict):
        """The model's answer piece by piece, as the provider streams it; its usage is kept when it ends."""
        overrides = {key: value for key, value in (provider or {}).items()
                     if key in ("provider", "model_params", "credential_id")}
        settings = chatbots.resolve_config(workspace, defaults, overrides)
        from privex.services import conversations   # conversations runs flows: imported when first needed
        chosen = conversations.provider_for(settings)
        params = conversations.provider_params(settings, workspace)
        finished = {}
        try:
            for event in chosen.chat(messages, params, context=[]):
                if event["type"] == "delta":
                    yield event["text"]
                elif event["type"] == "done":
                    finished = event
        except ProviderError as error:
            raise RuntimeError(f"the model did not answer: {error}") from error
        tokens = finished.get("usage") or {}
        usage.append({"provider": chosen.name, "model": finished.get("model"),
                      "prompt_tokens": int(tokens.get("prompt_tokens") or 0),
                      "completion_tokens": int(tokens.get("completion_tokens") or 0),
                      "estimated": bool(tokens.get("estimated"))})

    def llm(messages, provider: dict) -> str:
        return "".join(llm_stream(messages, provider))

    def knowledge(kb_ids, query, mode, top_k) -> list[dict]:
        if mode not in MODES:
            raise ValueError(f"unknown retrieval mode {mode!r}; use one of {', '.join(MODES)}")
        try:
            bases = chatbots.knowledge_bases(workspace, kb_ids if isinstance(kb_ids, list) else [kb_ids])
        except Invalid as error:
            raise ValueError(f"{error}: {', '.join(map(str, (error.errors or {}).get('knowledge_base_ids', [])))}"
                             ) from error
        hits = []
        for knowledge_base in bases:
            hits.extend(retrieve(knowledge_base, str(query), mode=MODES[mode], top_k=int(top_k)))
        hits.sort(key=lambda hit: hit.score, reverse=True)
        return [{"n": number, "text": hit.text, "document_id": str(hit.document_id) if hit.document_id else None,
                 "document_name": hit.document_name, "position": hit.position, "score": round(hit.score, 4)}
                for number, hit in enumerate(hits[:int(top_k)], start=1)]

    allow_private = bool(current_app.config.get("CHATFLOW_ALLOW_PRIVATE"))
    unsafe_code = bool(current_app.config.get("CHATFLOW_UNSAFE_CODE"))
    credential = outbound.credential_reader(workspace)
    context = NodeContext(llm_fn=llm, llm_stream_fn=llm_stream, retrieve_fn=knowledge, memory=dict(memory or {}),
                          env=flow_env(), code_fn=outbound.code_runner(allow_unsafe=unsafe_code),
                          http_fn=outbound.guarded_http(allow_private=allow_private), credential_fn=credential,
                          sql_fn=outbound.sql_runner(credential, allow_private=allow_private))
    context.usage = usage
    return context


def trace_entry(event: dict) -> dict:
    """One node's trace from the engine's ``trace`` event: node_id, type (the node's), inputs, outputs,
    duration_ms, error."""
    entry = {key: value for key, value in event.items() if key not in ("type", "node_type")}
    return {"node_id": entry.pop("node_id", None), "type": event.get("node_type"), **entry}


def gathered(events) -> dict:
    """A run's events as one result: ``status`` (done, paused or error), the ``answer``, its ``citations``, each node's
    ``trace``, the ``error`` (message and node_id) of a stopped flow, and the ``question`` and ``state`` of a paused
    one (send them back to resume)."""
    result = {"status": "done", "answer": "", "citations": [], "trace": [], "error": None, "question": None,
              "state": None}
    parts = []
    for event in events:
        kind = event.get("type")
        if kind == "delta":
            parts.append(str(event.get("text", "")))
        elif kind == "citations":
            result["citations"] = event.get("citations") or []
        elif kind == "trace":
            result["trace"].append(trace_entry(event))
        elif kind == "pause":
            result.update(status="paused", question=event.get("question"), state=event.get("state"))
        elif kind == "error":
            result.update(status="error", error={"message": event.get("message"), "node_id": event.get("node_id")})
    result["answer"] = "".join(parts)
    return result


def test_run(workspace: Workspace, nodes, edges, message, *, state=None, answer=None, config=None, memory=None):
    """Run a graph once for the builder (validated first: ``Invalid`` with the graph's errors) and yield the engine's
    events; ``state`` and ``answer`` resume a run that paused for human input."""
    from privex.services.chatflows import store
    nodes, edges = store.checked_graph(nodes, edges)
    graph = {"nodes": nodes, "edges": edges}
    context = context_for(workspace, config, memory)
    if state is not None:
        if not isinstance(state, dict) or "paused_at" not in state:
            raise Invalid("state must be the state of a paused run", errors={"state": ["not a paused run's state"]})
        return _kept(engine.resume(state, answer, graph, registry(), context))
    return _kept(engine.run(graph, registry(), context, message))


def _kept(events):
    """The run's events; when they end, what the run wrote on the way (the audit entries of the credentials its
    nodes read) is committed, though a test run stores nothing else."""
    yield from events
    db.session.commit()
