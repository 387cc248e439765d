"""Run a validated chatflow graph: follow edges from the start node, stream events as the nodes produce them.

Events (dicts with ``type``) match a conversation's: ``delta`` (text), ``citations``, ``done``; plus ``trace`` (one per
node run, yielded as soon as that node finished), ``error`` (the flow stopped) and ``pause`` (a node asks the visitor;
``state`` resumes it). ``run()`` and ``resume()`` are true generators: a response node's text goes out before any
later node runs, and a streaming node's pieces go out as they come.

Per-node policies live on the node next to ``config`` so a node type's schema never has to repeat them:
``retry: {attempts, backoff_ms}``, ``on_error: "stop" | "default" | "error_port"``, ``default: {outputs}``.
A node class may set ``role`` to ``"start"``, ``"response"`` or ``"loop"``; that is how the engine knows the ends of
a flow without naming any type. A node chooses its next edges by returning ``"_port"`` (a condition); a ``loop``
node returns ``items`` and the engine runs the edges from its ``body`` port once per item, then its ``done`` port.
A node class with ``stream(ctx, inputs)`` (a generator of text pieces) streams when it is a response node, or when a
response node's config says ``stream_from: <its id>``.

Execution is an explicit stack of frames (the flow, then one per loop being iterated) holding plain JSON, so a pause
anywhere — inside loops too — is the stack itself, and ``resume`` rebuilds it and carries on.
"""

from __future__ import annotations

import copy
import json
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from privex.services.chatflows import graph as graphs
from privex.services.chatflows.context import NodeContext
from privex.services.chatflows.templates import TemplateFailed, render_config

DEFAULT_BUDGETS = {"max_steps": 1000, "wall_seconds": 60.0, "max_variable_bytes": 1_000_000, "max_items": 100,
                   "parallel": 4}
CHUNK = 64                                  # characters per delta of a response node's (not streamed) text


class FlowStopped(Exception):
    def __init__(self, message, node_id=None):
        super().__init__(message)
        self.message, self.node_id = message, node_id


class Paused(Exception):
    def __init__(self, node_id, question):
        super().__init__(question)
        self.node_id, self.question = node_id, question


def _role(cls):
    return getattr(cls, "role", None)


class _Run:
    def __init__(self, graph, registry, context: NodeContext, budgets):
        self.graph, self.registry, self.context = graph, registry, context
        self.budgets = {**DEFAULT_BUDGETS, **(budgets or {})}
        self.nodes = {n["id"]: n for n in graph["nodes"]}
        self.classes = {nid: registry[n["type"]] for nid, n in self.nodes.items()}
        self.out_edges: dict[str, list[dict]] = {nid: [] for nid in self.nodes}
        for edge in graph.get("edges", []):
            self.out_edges[edge["source"]].append(edge)
        # Where a node goes when it names no port: every output port but ``error``.
        self.default_next = {nid: [e["target"] for e in self.out_edges[nid]
                                   if e.get("source_port") in getattr(cls, "outputs", ()) and
                                   e.get("source_port") != "error"] for nid, cls in self.classes.items()}
        self.stream_sources = {n["config"]["stream_from"] for nid, n in self.nodes.items()
                               if _role(self.classes[nid]) == "response" and isinstance(n.get("config"), dict)
                               and isinstance(n["config"].get("stream_from"), str)}
        self.steps, self.started, self.trace = 0, time.monotonic(), []
        self.lock, self.cancelled = threading.Lock(), False

    def next_ids(self, node_id, port):
        return [e["target"] for e in self.out_edges[node_id] if e.get("source_port") == port]

    def check_wall(self, node_id):
        if time.monotonic() - self.started > self.budgets["wall_seconds"]:
            raise FlowStopped(f"The chatflow ran longer than {self.budgets['wall_seconds']} s.", node_id)

    def check_budgets(self, variables, node_id):
        with self.lock:                             # parallel loop items count steps from several threads
            self.steps += 1
            steps = self.steps
        if self.cancelled:
            raise FlowStopped("The chatflow was stopped.", node_id)
        if steps > self.budgets["max_steps"]:
            raise FlowStopped(f"The chatflow ran more than {self.budgets['max_steps']} steps.", node_id)
        self.check_wall(node_id)
        size = len(json.dumps(variables, default=str))
        if size > self.budgets["max_variable_bytes"]:
            raise FlowStopped(f"The chatflow's variables grew past {self.budgets['max_variable_bytes']} bytes.",
                              node_id)

    # -- one node -------------------------------------------------------------------------------------------------

    def run_node(self, node_id, variables, answer=None):
        """Run one node with its retry and error policy (a generator: deltas if it streams, then its trace).

        Returns (outputs, port, streamed)."""
        node, cls = self.nodes[node_id], self.classes[node_id]
        self.check_budgets(variables, node_id)
        retry = node.get("retry") or {}
        attempts = max(1, int(retry.get("attempts", 1)))
        streams = hasattr(cls, "stream") and (_role(cls) == "response" or node_id in self.stream_sources)
        began = time.perf_counter()
        inputs, error, outputs, progress = {}, None, None, {"sent": 0}
        for attempt in range(attempts):
            try:
                config = render_config(node.get("config", {}),
                                       {**variables, "session": self.context.memory, "env": self.context.env})
                inputs = {"config": config, "input": variables.get("input")}
                if answer is not None:
                    inputs["answer"] = answer
                ctx = copy.copy(self.context)
                ctx.node_id, ctx.config, ctx.variables, ctx.registry = node_id, config, variables, self.registry
                if streams:
                    outputs = yield from self.pieces(node_id, cls().stream(ctx, inputs), progress)
                else:
                    outputs = cls().run(ctx, inputs) or {}
                if not isinstance(outputs, dict):
                    raise TypeError(f"the node returned {type(outputs).__name__}, not an object of outputs")
                error = None
                break
            except (FlowStopped, Paused):
                raise
            except TemplateFailed as exc:
                error = str(exc)
                break                                   # a template does not heal on retry
            except Exception as exc:                    # a node's failure is the flow's data, not a crash
                error = f"{type(exc).__name__}: {exc}"
                if progress["sent"]:
                    break                               # the visitor saw part of it: no retry, no stand-in
                if attempt + 1 < attempts:
                    time.sleep(float(retry.get("backoff_ms", 0)) / 1000 * (2 ** attempt))
        port = None
        if error is not None:
            policy = node.get("on_error", "stop")
            if progress["sent"]:
                yield self._trace(node, inputs, None, began, error)
                raise FlowStopped(f"Node {node_id!r} failed after it began to answer: {error}", node_id)
            if policy == "default":
                outputs = dict(node.get("default") or {})
            elif policy == "error_port":
                outputs, port = {"error": error}, "error"
            else:
                outputs = None
        elif "_pause" in outputs:
            yield self._trace(node, inputs, outputs, began, None)
            raise Paused(node_id, outputs["_pause"])
        yield self._trace(node, inputs, outputs, began, error)
        if outputs is None:
            raise FlowStopped(f"Node {node_id!r} failed: {error}", node_id)
        outputs = dict(outputs)
        port = port or outputs.pop("_port", None)
        variables[node_id] = outputs
        return outputs, port, bool(streams and error is None)

    def pieces(self, node_id, stream, progress):
        """Forward a streaming node's text pieces as ``delta`` events; its outputs are the whole text (plus any dict
        the generator returns)."""
        parts, size, extra = [], 0, None
        stream = iter(stream)
        try:
            while True:
                try:
                    piece = next(stream)
                except StopIteration as stop:
                    extra = stop.value
                    break
                piece = piece if isinstance(piece, str) else str(piece)
                if not piece:
                    continue
                size += len(piece)
                if size > self.budgets["max_variable_bytes"]:
                    raise FlowStopped(f"Node {node_id!r} streamed more than {self.budgets['max_variable_bytes']} "
                                      "characters.", node_id)
                self.check_wall(node_id)
                parts.append(piece)
                progress["sent"] += 1
                yield {"type": "delta", "text": piece}
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        return {**(extra if isinstance(extra, dict) else {}), "text": "".join(parts)}

    def _trace(self, node, inputs, outputs, began, error):
        return {"type": "trace", "node_id": node["id"], "node_type": node["type"], "inputs": inputs,
                "outputs": outputs, "duration_ms": round((time.perf_counter() - began) * 1000, 3), "error": error}

    def respond(self, outputs, streamed):
        if not streamed:
            text = outputs.get("text")
            text = "" if text is None else text if isinstance(text, str) else str(text)
            for start in range(0, len(text), CHUNK):
                yield {"type": "delta", "text": text[start:start + CHUNK]}
        if outputs.get("citations"):
            yield {"type": "citations", "citations": outputs["citations"]}

    # -- the frame stack ------------------------------------------------------------------------------------------
    # A frame: {"todo": [node ids], "vars": scope}. A loop frame adds "loop" (its node id), "outputs" (the loop
    # node's, with "items"), "index", "results" (one dict per finished item) and "own" (what this item set).

    def step(self, stack, node_id, answer=None):
        """Run one node in the top frame and schedule what follows it."""
        frame = stack[-1]
        outputs, port, streamed = yield from self.run_node(node_id, frame["vars"], answer)
        if "own" in frame:
            frame["own"][node_id] = outputs
        role = _role(self.classes[node_id])
        if port != "error":
            if role == "response":
                yield from self.respond(outputs, streamed)
            if role == "loop":
                frame["todo"] = self.next_ids(node_id, "done") + frame["todo"]
                yield from self.enter_loop(stack, node_id, outputs)
                return
        frame["todo"] = (self.next_ids(node_id, port) if port else self.default_next[node_id]) + frame["todo"]

    def execute(self, stack):
        """Run nodes depth-first in edge order (deterministic) until the stack is empty."""
        while stack:
            frame = stack[-1]
            if frame["todo"]:
                node_id = frame["todo"].pop(0)
                if node_id != frame.get("loop"):        # a body's edge back to its loop node ends the item
                    yield from self.step(stack, node_id)
            elif "loop" in frame and not frame.get("single"):
                self.next_item(stack)
            else:
                stack.pop()

    def enter_loop(self, stack, node_id, outputs):
        items = list(outputs.get("items") or [])
        if len(items) > self.budgets["max_items"]:
            raise FlowStopped(f"The loop has {len(items)} items; at most {self.budgets['max_items']}.", node_id)
        outputs = {**outputs, "items": items}
        if self.nodes[node_id].get("config", {}).get("parallel") and len(items) > 1:
            results = yield from self.parallel(node_id, outputs, stack[-1]["vars"])
            self.finish_loop(stack[-1], node_id, outputs, results)
            return
        stack.append({"loop": node_id, "outputs": outputs, "index": -1, "results": [], "todo": [], "own": {},
                      "vars": {}})
        self.next_item(stack)

    def begin_item(self, frame, parent_vars):
        loop_id, i = frame["loop"], frame["index"]
        frame["own"] = {loop_id: {**frame["outputs"], "item": frame["outputs"]["items"][i], "index": i}}
        frame["vars"] = {**parent_vars, **frame["own"]}
        frame["todo"] = self.next_ids(loop_id, "body")

    @staticmethod
    def item_result(frame):
        """What one item leaves in ``results``: the body's outputs, and the loop's own item and index."""
        own = frame["own"][frame["loop"]]
        return {**frame["own"], frame["loop"]: {"item": own["item"], "index": own["index"]}}

    def next_item(self, stack):
        frame = stack[-1]
        if frame["index"] >= 0:
            frame["results"].append(self.item_result(frame))
        frame["index"] += 1
        if frame["index"] < len(frame["outputs"]["items"]):
            self.begin_item(frame, stack[-2]["vars"])
        else:
            stack.pop()
            self.finish_loop(stack[-1], frame["loop"], frame["outputs"], frame["results"])

    @staticmethod
    def finish_loop(parent, loop_id, outputs, results):
        parent["vars"][loop_id] = {**outputs, "results": results}
        if "own" in parent:
            parent["own"][loop_id] = parent["vars"][loop_id]

    def parallel(self, loop_id, outputs, parent_vars):
        """Run the items in threads (up to ``budgets.parallel``); events come out in item order, each item's
        buffered until the items before it have finished. A pause cannot be resumed from here: it stops the flow."""
        items = outputs["items"]
        queues = [queue.Queue() for _ in items]

        def work(i):
            frame = {"loop": loop_id, "outputs": outputs, "index": i, "results": [], "own": {}, "single": True}
            try:
                self.begin_item(frame, parent_vars)
                for event in self.execute([frame]):
                    queues[i].put(event)
                queues[i].put(("ok", self.item_result(frame)))
            except Paused as paused:
                queues[i].put(("stop", FlowStopped(
                    f"Node {paused.node_id!r} asks the visitor a question inside the parallel loop {loop_id!r}; "
                    "a loop whose body can pause must run its items one by one (turn off parallel).",
                    paused.node_id)))
            except FlowStopped as stop:
                queues[i].put(("stop", stop))
            except BaseException as exc:                # reported to the visitor, never a hung queue
                queues[i].put(("stop", FlowStopped(f"Loop {loop_id!r} failed: {type(exc).__name__}: {exc}",
                                                   loop_id)))

        pool = ThreadPoolExecutor(max_workers=min(self.budgets["parallel"], len(items)))
        results, failed = [], False
        try:
            for i in range(len(items)):
                pool.submit(work, i)
            for q in queues:
                while True:
                    message = self.wait(q, loop_id)
                    if isinstance(message, tuple):
                        if message[0] == "stop":
                            raise message[1]
                        results.append(message[1])
                        break
                    yield message
        except BaseException:
            failed = self.cancelled = True              # the other items stop at their next node
            raise
        finally:
            # After a failure, do not wait for an item stuck in a slow node: the visitor gets the error now.
            pool.shutdown(wait=not failed, cancel_futures=True)
        return results

    def wait(self, q, loop_id):
        """The next message of an item, no later than the wall-time budget allows."""
        left = self.budgets["wall_seconds"] - (time.monotonic() - self.started)
        try:
            return q.get(timeout=max(left, 0.001))
        except queue.Empty:
            raise FlowStopped(f"The chatflow ran longer than {self.budgets['wall_seconds']} s.", loop_id) from None


def _freeze(stack) -> list[dict]:
    """The frame stack as JSON: the flow's variables once, each loop frame only what its item set."""
    frames = []
    for frame in stack:
        if "loop" in frame:
            frames.append({k: frame[k] for k in ("loop", "outputs", "index", "results", "own", "todo")})
        else:
            frames.append({"todo": frame["todo"], "variables": frame["vars"]})
    return json.loads(json.dumps(frames, default=str))


def _thaw(frames) -> list[dict]:
    stack = []
    for f in frames:
        if "loop" in f:
            own = dict(f["own"])
            stack.append({"loop": f["loop"], "outputs": f["outputs"], "index": f["index"],
                          "results": list(f["results"]), "own": own, "todo": list(f["todo"]),
                          "vars": {**stack[-1]["vars"], **own}})
        else:
            stack.append({"todo": list(f["todo"]), "vars": dict(f["variables"])})
    return stack


def _frames_of(state, r: _Run) -> list[dict] | None:
    """The state's frames, or None when they name nodes this graph does not have (a state from another version, or
    one a client made up): resuming must fail with a message, not a KeyError deep in the run."""
    frames = state.get("frames")
    if frames is None:                              # a state saved before loop frames existed
        frames = [{"todo": state.get("rest") or [], "variables": state["variables"]}]
    if state.get("paused_at") not in r.nodes or not isinstance(frames, list) or not frames:
        return None
    for depth, frame in enumerate(frames):
        todo_ok = isinstance(frame.get("todo"), list) and all(t in r.nodes for t in frame["todo"])
        if "loop" in frame:
            shape_ok = (depth > 0 and frame["loop"] in r.nodes and _role(r.classes[frame["loop"]]) == "loop"
                        and isinstance(frame.get("own"), dict) and isinstance(frame.get("results"), list)
                        and isinstance(frame.get("outputs"), dict) and isinstance(frame["outputs"].get("items"), list)
                        and isinstance(frame.get("index"), int)
                        and 0 <= frame["index"] < len(frame["outputs"]["items"]))
        else:
            shape_ok = depth == 0 and isinstance(frame.get("variables"), dict)
        if not (todo_ok and shape_ok):
            return None
    return frames


def _drive(r: _Run, events, stack):
    top = stack[0]["vars"]
    try:
        for event in events:
            if event["type"] == "trace":            # the stored trace names the node's type "type", as before
                r.trace.append({"node_id": event["node_id"], "type": event["node_type"], "inputs": event["inputs"],
                                "outputs": event["outputs"], "duration_ms": event["duration_ms"],
                                "error": event["error"]})
            yield event
    except Paused as paused:
        state = {"paused_at": paused.node_id, "question": paused.question, "frames": _freeze(stack),
                 "session": r.context.memory, "steps": r.steps}
        yield {"type": "pause", "question": paused.question, "node_id": paused.node_id,
               "state": json.loads(json.dumps(state, default=str))}
        return
    except FlowStopped as stop:
        yield {"type": "error", "message": stop.message, "node_id": stop.node_id, "trace": r.trace}
        return
    yield {"type": "done", "trace": r.trace, "variables": top}


def _upgraded(graph, registry):
    graph, errors = graphs.upgrade(graph, registry)
    if errors:
        node_id, message = next(iter(errors.items()))
        return graph, {"type": "error", "message": f"Node {node_id!r}: {message}", "node_id": node_id, "trace": []}
    return graph, None


def run(graph, registry, context: NodeContext, input, *, budgets=None):
    """Yield the flow's events as they happen (see the module docstring)."""
    graph, failed = _upgraded(graph, registry)
    if failed:
        yield failed
        return
    r = _Run(graph, registry, context, budgets)
    start = next(n["id"] for n in graph["nodes"] if _role(registry[n["type"]]) == "start")
    stack = [{"todo": [start], "vars": {"input": input}}]
    yield from _drive(r, r.execute(stack), stack)


def resume(state, answer, graph, registry, context: NodeContext, *, budgets=None):
    """Continue a paused flow: the paused node runs again with ``answer`` in the scope it paused in (a loop item
    too), then the flow goes on — the rest of that item, the loop's other items, its ``done`` edges, the rest."""
    graph, failed = _upgraded(graph, registry)
    if failed:
        yield failed
        return
    r = _Run(graph, registry, context, budgets)
    try:
        stack = _thaw(_frames_of(state, r))
        steps, session = state.get("steps") or 0, state.get("session") or {}
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0 or not isinstance(session, dict):
            stack = None                            # a state made up by a client: its counters are not ours
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        stack = None
    if stack is None or not stack:
        yield {"type": "error", "message": "The paused run's state does not fit this chatflow; start again.",
               "node_id": None, "trace": []}
        return
    r.steps = steps
    context.memory.update(session)

    def events():
        yield from r.step(stack, state["paused_at"], answer)
        yield from r.execute(stack)

    yield from _drive(r, events(), stack)

