"""Run a validated chatflow graph: follow edges from the start node, stream the response node's text.

Events (dicts with ``type``) match a conversation's: ``delta`` (text), ``citations``, ``done``; plus ``trace`` (one per
node run), ``error`` (the flow stopped) and ``pause`` (a node asks the visitor; ``state`` resumes it). Per-node
policies live on the node next to ``config`` so a node type's schema never has to repeat them:
``retry: {attempts, backoff_ms}``, ``on_error: "stop" | "default" | "error_port"``, ``default: {outputs}``.
A node class may set ``role`` to ``"start"``, ``"response"`` or ``"loop"``; that is how the engine knows the ends of
a flow without naming any type. A node chooses its next edges by returning ``"_port"`` (a condition); a ``loop``
node returns ``items`` and the engine runs the edges from its ``body`` port once per item, then its ``done`` port.
"""

from __future__ import annotations

import copy
import json
import time
from concurrent.futures import ThreadPoolExecutor

from privex.services.chatflows.context import NodeContext
from privex.services.chatflows.templates import TemplateFailed, render_config

DEFAULT_BUDGETS = {"max_steps": 1000, "wall_seconds": 60.0, "max_variable_bytes": 1_000_000, "max_items": 100,
                   "parallel": 4}


class FlowStopped(Exception):
    def __init__(self, message, node_id=None):
        super().__init__(message)
        self.message, self.node_id = message, node_id


class Paused(Exception):
    def __init__(self, node_id, question):
        super().__init__(question)
        self.node_id, self.question = node_id, question


class _Run:
    def __init__(self, graph, registry, context: NodeContext, budgets):
        self.graph, self.registry, self.context = graph, registry, context
        self.budgets = {**DEFAULT_BUDGETS, **(budgets or {})}
        self.nodes = {n["id"]: n for n in graph["nodes"]}
        self.out_edges: dict[str, list[dict]] = {n["id"]: [] for n in graph["nodes"]}
        for edge in graph.get("edges", []):
            self.out_edges[edge["source"]].append(edge)
        self.steps, self.started, self.trace, self.events = 0, time.monotonic(), [], []

    def next_ids(self, node_id, port):
        return [e["target"] for e in self.out_edges[node_id] if e.get("source_port") == port]

    def check_budgets(self, variables, node_id):
        self.steps += 1
        if self.steps > self.budgets["max_steps"]:
            raise FlowStopped(f"The chatflow ran more than {self.budgets['max_steps']} steps.", node_id)
        if time.monotonic() - self.started > self.budgets["wall_seconds"]:
            raise FlowStopped(f"The chatflow ran longer than {self.budgets['wall_seconds']} s.", node_id)
        size = len(json.dumps(variables, default=str))
        if size > self.budgets["max_variable_bytes"]:
            raise FlowStopped(f"The chatflow's variables grew past {self.budgets['max_variable_bytes']} bytes.",
                              node_id)

    def run_node(self, node_id, variables, answer=None):
        """Run one node with its retry and error policy; return (outputs, port)."""
        node = self.nodes[node_id]
        cls = self.registry[node["type"]]
        self.check_budgets(variables, node_id)
        retry = node.get("retry") or {}
        attempts = max(1, int(retry.get("attempts", 1)))
        began = time.perf_counter()
        inputs, error, outputs = {}, None, None
        for attempt in range(attempts):
            try:
                config = render_config(node.get("config", {}),
                                       {**variables, "session": self.context.memory, "env": self.context.env})
                inputs = {"config": config, "input": variables.get("input")}
                if answer is not None:
                    inputs["answer"] = answer
                ctx = copy.copy(self.context)
                ctx.node_id, ctx.config, ctx.variables, ctx.registry = node_id, config, variables, self.registry
                outputs = cls().run(ctx, inputs) or {}
                error = None
                break
            except TemplateFailed as exc:
                error = str(exc)
                break                                   # a template does not heal on retry
            except Exception as exc:                    # a node's failure is the flow's data, not a crash
                error = f"{type(exc).__name__}: {exc}"
                if attempt + 1 < attempts:
                    time.sleep(float(retry.get("backoff_ms", 0)) / 1000 * (2 ** attempt))
        port = None
        if error is not None:
            policy = node.get("on_error", "stop")
            if policy == "default":
                outputs = dict(node.get("default") or {})
            elif policy == "error_port":
                outputs, port = {"error": error}, "error"
        elif "_pause" in outputs:
            self._trace(node, inputs, outputs, began, None)
            raise Paused(node_id, outputs["_pause"])
        self._trace(node, inputs, outputs, began, error)
        if error is not None and outputs is None:
            raise FlowStopped(f"Node {node_id!r} failed: {error}", node_id)
        outputs = dict(outputs)
        port = port or outputs.pop("_port", None)
        variables[node_id] = outputs
        return outputs, port

    def _trace(self, node, inputs, outputs, began, error):
        entry = {"node_id": node["id"], "type": node["type"], "inputs": inputs, "outputs": outputs,
                 "duration_ms": round((time.perf_counter() - began) * 1000, 3), "error": error}
        self.trace.append(entry)
        self.events.append({**entry, "type": "trace", "node_type": node["type"]})

    def walk(self, todo: list[str], variables, stop_at=None):
        """Run nodes depth-first in edge order (deterministic); a loop node runs its body per item."""
        todo = list(todo)
        while todo:
            node_id = todo.pop(0)
            if node_id == stop_at:
                continue
            cls = self.registry[self.nodes[node_id]["type"]]
            try:
                outputs, port = self.run_node(node_id, variables)
            except Paused as paused:
                paused.rest = todo
                raise
            role = getattr(cls, "role", None)
            if role == "response":
                self.respond(outputs)
            if role == "loop":
                self.loop(node_id, outputs, variables)
                port = "done"
            if port is None:
                ports = [p for p in getattr(cls, "outputs", ()) if p != "error"]
                nxt = [e["target"] for e in self.out_edges[node_id] if e.get("source_port") in ports]
            else:
                nxt = self.next_ids(node_id, port)
            todo = nxt + todo

    def loop(self, node_id, outputs, variables):
        items = list(outputs.get("items") or [])
        if len(items) > self.budgets["max_items"]:
            raise FlowStopped(f"The loop has {len(items)} items; at most {self.budgets['max_items']}.", node_id)
        body = self.next_ids(node_id, "body")
        parallel = bool(self.nodes[node_id].get("config", {}).get("parallel"))

        def one(i_item):
            i, item = i_item
            scope = dict(variables)
            scope[node_id] = {**outputs, "item": item, "index": i}
            self.walk(body, scope, stop_at=node_id)
            return {k: v for k, v in scope.items() if k not in variables or k == node_id}

        if parallel and len(items) > 1:
            with ThreadPoolExecutor(max_workers=self.budgets["parallel"]) as pool:
                results = list(pool.map(one, enumerate(items)))
        else:
            results = [one(x) for x in enumerate(items)]
        variables[node_id] = {**outputs, "results": results}

    def respond(self, outputs):
        text = str(outputs.get("text", ""))
        for start in range(0, len(text), 64):
            self.events.append({"type": "delta", "text": text[start:start + 64]})
        if outputs.get("citations"):
            self.events.append({"type": "citations", "citations": outputs["citations"]})


def _drive(r: _Run, todo, variables):
    try:
        r.walk(todo, variables)
    except Paused as paused:
        yield from r.events
        state = {"paused_at": paused.node_id, "question": paused.question, "rest": paused.rest,
                 "variables": variables, "session": r.context.memory, "steps": r.steps}
        yield {"type": "pause", "question": paused.question, "node_id": paused.node_id,
               "state": json.loads(json.dumps(state, default=str))}
        return
    except FlowStopped as stop:
        yield from r.events
        yield {"type": "error", "message": stop.message, "node_id": stop.node_id, "trace": r.trace}
        return
    yield from r.events
    yield {"type": "done", "trace": r.trace, "variables": variables}


def run(graph, registry, context: NodeContext, input, *, budgets=None):
    """Yield the flow's events. Events are produced per node; the response text is chunked into ``delta``s."""
    r = _Run(graph, registry, context, budgets)
    start = next(n["id"] for n in graph["nodes"] if getattr(registry[n["type"]], "role", None) == "start")
    yield from _drive(r, [start], {"input": input})


def resume(state, answer, graph, registry, context: NodeContext, *, budgets=None):
    """Continue a paused flow: the paused node runs again with ``answer`` and the flow goes on from it."""
    r = _Run(graph, registry, context, budgets)
    r.steps = state.get("steps", 0)
    context.memory.update(state.get("session") or {})
    variables = dict(state["variables"])
    node_id = state["paused_at"]
    try:
        outputs, port = r.run_node(node_id, variables, answer=answer)
    except FlowStopped as stop:
        yield from r.events
        yield {"type": "error", "message": stop.message, "node_id": stop.node_id, "trace": r.trace}
        return
    cls = registry[graph_nodes(graph)[node_id]["type"]]
    ports = [port] if port else [p for p in getattr(cls, "outputs", ()) if p != "error"]
    nxt = [e["target"] for e in r.out_edges[node_id] if e.get("source_port") in ports]
    yield from _drive(r, nxt + list(state.get("rest") or []), variables)


def graph_nodes(graph):
    return {n["id"]: n for n in graph["nodes"]}
