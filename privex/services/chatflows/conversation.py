"""One chat turn answered by a published chatflow: the part of ``conversations.respond`` that differs for a graph.

``conversations.respond`` does what every turn does (the lead gate, rate limits) and hands a chatflow's turn here:
the visitor's message is stored, the deployed version runs with the session's memory, the response node's text
streams as ``delta`` events, and the answer is stored with its citations, the version that gave it and the trace of
every node (``metadata.trace``, what ``execute`` keeps and the builder shows), with the token usage of the flow's LLM
calls. A flow that pauses for human input asks its question as the answer and keeps the paused state on the session,
so the visitor's next message resumes it. A flow that fails answers with the flow's fallback message; the error stays
in the stored trace and the ``done`` event's ``flow_error``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from privex.extensions import db
from privex.models import ChatSession
from privex.services import conversations
from privex.services.chatflows import engine, runtime
from privex.services.chatflows.runtime import trace_entry

TRACE_VALUE_CHARACTERS = 2000   # a stored trace keeps each node's inputs and outputs up to this size


def respond(bot: conversations.Bot, session: ChatSession, question: str) -> Iterator[dict]:
    state = dict((session.user_metadata or {}).get("flow") or {})
    paused = state.get("paused")
    if paused and paused.get("version") != bot.graph["version"]:
        paused = None  # the flow was published again meanwhile: the paused run's graph is gone, start afresh
    started = time.perf_counter()
    conversations.store(session.id, {"workspace_id": session.workspace_id, "role": "user", "content": question})
    db.session.commit()
    turn = {"workspace_id": session.workspace_id, "organization_id": bot.organization.id, "session_id": session.id,
            "kept": {"values": state.get("values") or {}, "paused": state.get("paused")},
            "chatflow_id": bot.chatflow_id, "started": started}
    context = runtime.context_for(bot.workspace, bot.config, state.get("values") or {})
    graph = {"nodes": bot.graph["nodes"], "edges": bot.graph["edges"]}
    if paused:
        events = engine.resume(paused["state"], question, graph, runtime.registry(), context)
    else:
        events = engine.run(graph, runtime.registry(), context, question)
    return _stream(turn, bot, context, events)


def _stream(turn: dict, bot: conversations.Bot, context, events) -> Iterator[dict]:
    parts, citations, trace, pause, failure = [], [], [], None, None
    for event in events:
        kind = event["type"]
        if kind == "delta":
            parts.append(event["text"])
            yield event
        elif kind == "citations":
            citations = event["citations"]
        elif kind == "trace":
            trace.append(trace_entry(event))
        elif kind == "pause":
            pause = event
            text = str(event.get("question") or "")
            parts.append(text)
            yield {"type": "delta", "text": text}
        elif kind == "error":
            failure = event
    if failure is not None:
        fallback = bot.config.get("fallback_message") or "Sorry, something went wrong."
        parts.append(fallback)
        yield {"type": "delta", "text": fallback}
    answer = "".join(parts)
    used = list(getattr(context, "usage", []) or [])
    prompt_tokens = sum(item["prompt_tokens"] for item in used)
    completion_tokens = sum(item["completion_tokens"] for item in used)
    latency = int((time.perf_counter() - turn["started"]) * 1000)
    message_id = uuid.uuid4()
    shown = citations if bot.config.get("citations", True) else []
    metadata = {"chatflow_version": bot.graph["version"], "trace": stored_trace(trace)}
    if failure is not None:
        metadata["flow_error"] = {"message": failure.get("message"), "node_id": failure.get("node_id")}
    if pause is not None:
        metadata["awaiting_input"] = True
    usage = None
    if used:
        usage = {"workspace_id": turn["workspace_id"], "organization_id": turn["organization_id"],
                 "chatflow_id": turn["chatflow_id"], "message_id": message_id, "provider": used[-1]["provider"],
                 "model": used[-1]["model"], "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                 "estimated": any(item["estimated"] for item in used)}
    conversations.store(turn["session_id"], {
        "id": message_id, "workspace_id": turn["workspace_id"], "role": "assistant", "content": answer,
        "citations": shown, "model": used[-1]["model"] if used else None, "latency_ms": latency,
        "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "metadata": metadata}, usage=usage)
    flow_state = {"values": context.memory,
                  "paused": {"state": pause["state"], "version": bot.graph["version"]} if pause is not None else None}
    if _plain(flow_state) != _plain(turn["kept"]):  # a flow without memory or pauses writes nothing more
        remember(turn["session_id"], flow_state)
    db.session.commit()
    yield {"type": "citations", "citations": shown}
    done = {"type": "done", "message_id": str(message_id),
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}, "latency_ms": latency,
            "finish_reason": "awaiting_input" if pause is not None else ("error" if failure else "stop")}
    if failure is not None:
        done["flow_error"] = failure.get("message")
    yield done


def _plain(value):
    return json.loads(json.dumps(value, default=str))


def remember(session_id, flow_state: dict) -> None:
    """Keep the flow's session memory (``values``) and paused run on the session (``user_metadata.flow``)."""
    value = _plain(flow_state)
    flow = sa.func.jsonb_build_object("flow", sa.literal(value, JSONB))
    db.session.execute(sa.update(ChatSession).where(ChatSession.id == session_id).values(
        user_metadata=ChatSession.user_metadata.op("||")(flow)))


def stored_trace(trace: list) -> list:
    """The trace as stored: each node's inputs and outputs cut to ``TRACE_VALUE_CHARACTERS`` of JSON."""
    kept = []
    for entry in trace or []:
        entry = dict(entry)
        for key in ("inputs", "outputs"):
            text = json.dumps(entry.get(key), default=str)
            if len(text) > TRACE_VALUE_CHARACTERS:
                entry[key] = {"truncated": text[:TRACE_VALUE_CHARACTERS]}
            else:
                entry[key] = json.loads(text)
        kept.append(entry)
    return kept
