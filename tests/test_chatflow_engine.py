"""The chatflow engine core with the real plugin registry (pluggy entry points + a third-party plugin object)."""

from __future__ import annotations

import ast
import json
import threading
from pathlib import Path

import pytest

from privex import hookimpl
from privex.plugins import load_plugins
from privex.services.chatflows import engine, graph as graphs, templates
from privex.services.chatflows.context import NodeContext
from privex.services.errors import Invalid

ROOT = Path(__file__).resolve().parents[1]


class Shout:
    """A third-party node type: upper-cases its text; fails the first ``fail_times`` runs."""
    name, version = "shout", "1"
    config_schema = {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}
    inputs, outputs = ("in",), ("out",)
    failures = {"left": 0}

    def run(self, ctx, inputs):
        if Shout.failures["left"] > 0:
            Shout.failures["left"] -= 1
            raise RuntimeError("flaky")
        return {"text": inputs["config"]["text"].upper()}


class ShoutPlugin:
    @hookimpl
    def privex_node_types(self):
        return [Shout]


@pytest.fixture(scope="module")
def registry():
    return load_plugins(allow=["nodes"], extra=[ShoutPlugin()]).node_types


def flow(*nodes, edges=()):
    return {"nodes": [{"id": i, "type": t, "config": c, **extra} for i, t, c, *rest in nodes
                      for extra in [rest[0] if rest else {}]],
            "edges": [{"source": s, "source_port": sp, "target": t, "target_port": "in"} for s, sp, t in edges]}


def linear(*middle):
    ids = ["s"] + [m[0] for m in middle] + ["r"]
    nodes = [("s", "start", {})] + list(middle) + [("r", "response", {"text": "{{ answer }}"})]
    return nodes, [(a, "out", b) for a, b in zip(ids, ids[1:])]


def events(g, registry, text="hi", ctx=None, **budgets):
    graphs.validate(g, registry)
    return list(engine.run(g, registry, ctx or NodeContext(), text, budgets=budgets))


def answer(evs):
    return "".join(e["text"] for e in evs if e["type"] == "delta")


def errors_of(g, registry):
    with pytest.raises(Invalid) as caught:
        graphs.validate(g, registry)
    return caught.value.errors


def test_validation_names_each_problem(registry):
    e = errors_of(flow(("s", "start", {}), ("x", "nope", {}), ("r", "response", {}),
                       edges=[("s", "out", "r"), ("s", "out", "ghost"), ("s", "bad", "r")]), registry)
    assert "Unknown node type 'nope'" in e["nodes"]["x"][0] and "condition" in e["nodes"]["x"][0]
    assert "'text' is a required property" in e["nodes"]["r"][0]
    assert "does not exist" in e["edges"]["1"][0] and "no source port 'bad'" in e["edges"]["2"][0]
    assert "No path from the start node" in e["nodes"]["x"][-1]
    e = errors_of(flow(("a", "variable", {"values": {}}), ("a", "variable", {"values": {}})), registry)
    assert "Duplicate node id 'a'" in e["nodes"]["a"][0]
    assert e["graph"] == ["The chatflow needs a start node.", "The chatflow needs a response node."]
    e = errors_of(flow(("s", "start", {}), ("a", "shout", {"text": "x"}), ("b", "shout", {"text": "x"}),
                       ("r", "response", {"text": "x"}),
                       edges=[("s", "out", "a"), ("a", "out", "b"), ("b", "out", "a"), ("b", "out", "r")]), registry)
    assert "cycle" in e["nodes"]["b"][0]
    with pytest.raises(Invalid, match="at most 500 nodes"):
        graphs.validate({"nodes": [{"id": str(i), "type": "shout", "config": {"text": ""}} for i in range(501)],
                         "edges": []}, registry)
    e = errors_of(flow(("s", "start", {}), ("r", "response", {"text": "x" * 70000}), edges=[("s", "out", "r")]),
                  registry)
    assert "larger than" in e["nodes"]["r"][0]


def test_a_cycle_through_a_loop_node_is_valid(registry):
    g = flow(("s", "start", {}), ("l", "loop", {"items": "a\nb"}), ("v", "shout", {"text": "{{ l.item }}"}),
             ("r", "response", {"text": "{{ l.results | map(attribute='v') | map(attribute='text') | join(',') }}"}),
             edges=[("s", "out", "l"), ("l", "body", "v"), ("v", "out", "l"), ("l", "done", "r")])
    g["edges"][2]["target_port"] = "next"
    assert answer(events(g, registry)) == "A,B"


def test_third_party_node_runs_like_a_builtin_and_trace_is_ordered(registry):
    nodes, edges = linear(("a", "shout", {"text": "{{ input }}"}), ("b", "variable", {"values": {"x": "{{ a.text }}!"}}))
    nodes[-1] = ("r", "response", {"text": "{{ b.x }}"})
    evs = events(flow(*nodes, edges=edges), registry, "hello")
    assert answer(evs) == "HELLO!"
    assert [t["node_id"] for t in evs[-1]["trace"]] == ["s", "a", "b", "r"]
    assert evs[-1]["type"] == "done"


def test_condition_branches(registry):
    def g(op, right):
        return flow(("s", "start", {}),
                    ("c", "condition", {"cases": [{"left": "{{ input }}", "op": op, "right": right, "port": "if"}]}),
                    ("y", "response", {"text": "yes"}), ("n", "response", {"text": "no"}),
                    edges=[("s", "out", "c"), ("c", "if", "y"), ("c", "else", "n")])
    assert answer(events(g("contains", "ELL"), registry, "hello")) == "yes"
    assert answer(events(g(">=", "10"), registry, "9")) == "no"
    assert answer(events(g("is_empty", ""), registry, "")) == "yes"
    assert answer(events(g("starts_with", "x"), registry, "hello")) == "no"


def test_retries_then_error_policies(registry):
    Shout.failures["left"] = 2
    nodes, edges = linear(("a", "shout", {"text": "ok"}, {"retry": {"attempts": 3, "backoff_ms": 1}}))
    nodes[-1] = ("r", "response", {"text": "{{ a.text }}"})
    assert answer(events(flow(*nodes, edges=edges), registry)) == "OK"
    Shout.failures["left"] = 5
    evs = events(flow(*nodes, edges=edges), registry)
    assert evs[-1]["type"] == "error" and "flaky" in evs[-1]["message"] and evs[-1]["node_id"] == "a"
    Shout.failures["left"] = 1
    nodes[1] = ("a", "shout", {"text": "ok"}, {"on_error": "default", "default": {"text": "fallback"}})
    assert answer(events(flow(*nodes, edges=edges), registry)) == "fallback"
    Shout.failures["left"] = 1
    g = flow(("s", "start", {}), ("a", "shout", {"text": "ok"}, {"on_error": "error_port"}),
             ("r", "response", {"text": "fine"}), ("e", "response", {"text": "sorry: {{ a.error }}"}),
             edges=[("s", "out", "a"), ("a", "out", "r"), ("a", "error", "e")])
    assert answer(events(g, registry)) == "sorry: RuntimeError: flaky"


def test_unknown_template_variable_is_a_node_error(registry):
    nodes, edges = linear(("a", "shout", {"text": "{{ missing.x }}"}))
    evs = events(flow(*nodes, edges=edges), registry)
    assert evs[-1]["type"] == "error" and "missing" in evs[-1]["message"] and evs[-1]["node_id"] == "a"


def test_sandbox_refuses_python_internals(registry):
    nodes, edges = linear(("a", "shout", {"text": "{{ input.__class__.__mro__ }}"}))
    evs = events(flow(*nodes, edges=edges), registry)
    assert evs[-1]["type"] == "error"


def test_each_budget_stops_the_flow(registry):
    g = flow(("s", "start", {}), ("l", "loop", {"items": json.dumps(list(range(20)))}),
             ("v", "shout", {"text": "x" * 1000}), ("r", "response", {"text": "end"}),
             edges=[("s", "out", "l"), ("l", "body", "v"), ("l", "done", "r")])
    assert answer(events(g, registry)) == "end"
    assert "more than 5 steps" in events(g, registry, max_steps=5)[-1]["message"]
    assert "longer than 0" in events(g, registry, wall_seconds=0)[-1]["message"]
    assert "at most 10" in events(g, registry, max_items=10)[-1]["message"]
    assert "grew past 500 bytes" in events(g, registry, max_variable_bytes=500)[-1]["message"]


def test_parallel_iteration_keeps_item_order(registry):
    g = flow(("s", "start", {}), ("l", "loop", {"items": '["a","b","c","d","e"]', "parallel": True}),
             ("v", "shout", {"text": "{{ l.item }}"}),
             ("r", "response", {"text": "{{ l.results | map(attribute='v') | map(attribute='text') | join('') }}"}),
             edges=[("s", "out", "l"), ("l", "body", "v"), ("l", "done", "r")])
    assert answer(events(g, registry)) == "ABCDE"


def test_human_input_pauses_and_resumes(registry):
    g = flow(("s", "start", {}), ("h", "human_input", {"question": "Your name?"}),
             ("m", "memory", {"action": "set", "key": "name", "value": "{{ h.answer }}"}),
             ("r", "response", {"text": "Hello {{ h.answer }} ({{ input }})"}),
             edges=[("s", "out", "h"), ("h", "out", "m"), ("m", "out", "r")])
    evs = events(g, registry, "hi")
    assert evs[-1]["type"] == "pause" and evs[-1]["question"] == "Your name?"
    state = json.loads(json.dumps(evs[-1]["state"]))
    ctx = NodeContext()
    evs = list(engine.resume(state, "Ada", g, registry, ctx))
    assert answer(evs) == "Hello Ada (hi)" and ctx.memory == {"name": "Ada"}


def test_llm_and_knowledge_base_nodes_use_the_injected_core(registry):
    seen = {}

    def retrieve(kbs, query, mode, top_k):
        seen["retrieve"] = (kbs, query, mode, top_k)
        return [{"text": "Paris is the capital.", "document": "geo.md"}]

    def llm(messages, provider):
        seen["llm"] = messages
        return "Answer: " + messages[-1]["content"].split("\n")[0]

    g = flow(("s", "start", {}), ("k", "knowledge_base", {"knowledge_bases": ["kb1"], "query": "{{ input }}"}),
             ("l", "llm", {"prompt": "{{ k.text }}\n{{ input }}"}),
             ("r", "response", {"text": "{{ l.text }}", "citations_from": "k"}),
             edges=[("s", "out", "k"), ("k", "out", "l"), ("l", "out", "r")])
    evs = events(g, registry, "capital?", ctx=NodeContext(llm_fn=llm, retrieve_fn=retrieve))
    assert answer(evs) == "Answer: Paris is the capital."
    assert [e for e in evs if e["type"] == "citations"][0]["citations"][0]["document"] == "geo.md"
    assert seen["retrieve"] == (["kb1"], "capital?", "hybrid", 4)


def test_memory_get_reads_session_state(registry):
    nodes, edges = linear(("m", "memory", {"action": "get", "key": "k", "default": "none"}))
    nodes[-1] = ("r", "response", {"text": "{{ m.value }}"})
    assert answer(events(flow(*nodes, edges=edges), registry, ctx=NodeContext(memory={"k": "v"}))) == "v"
    assert answer(events(flow(*nodes, edges=edges), registry)) == "none"


def test_the_engine_names_no_node_type_and_imports_no_node_plugin(registry):
    for path in (ROOT / "privex/services/chatflows").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not any(n.startswith("privex_nodes") for n in names), path
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert node.value not in set(registry) - {"start", "response", "loop"}, (path, node.value)


def test_llm_node_with_the_real_offline_extractive_provider():
    """kb -> llm -> condition -> response with the installed extractive provider (pluggy), no model needed."""
    plugins = load_plugins(allow=["nodes", "llms"])
    registry, provider = plugins.node_types, plugins.llm_providers["extractive"]
    chunks = [{"text": "The office opens at nine. Parking is free on weekends.", "document_name": "faq.md"}]

    def llm(messages, config):
        return "".join(e["text"] for e in provider.chat(messages, None, context=chunks) if e["type"] == "delta")

    g = flow(("s", "start", {}), ("k", "knowledge_base", {"knowledge_bases": ["kb"], "query": "{{ input }}"}),
             ("l", "llm", {"prompt": "{{ input }}"}),
             ("c", "condition", {"cases": [{"left": "{{ l.text }}", "op": "contains", "right": "nine", "port": "if"}]}),
             ("y", "response", {"text": "{{ l.text }}", "citations_from": "k"}),
             ("n", "response", {"text": "not found"}),
             edges=[("s", "out", "k"), ("k", "out", "l"), ("l", "out", "c"), ("c", "if", "y"), ("c", "else", "n")])
    evs = events(g, registry, "When does the office open?",
                 ctx=NodeContext(llm_fn=llm, retrieve_fn=lambda *a: chunks))
    assert "nine" in answer(evs) and evs[-1]["type"] == "done"
    assert [t["node_id"] for t in evs[-1]["trace"]] == ["s", "k", "l", "c", "y"]


def test_session_and_whitelisted_env_are_template_variables(registry):
    nodes, edges = linear(("a", "shout", {"text": "{{ session.name }} {{ env.SITE }}"}))
    nodes[-1] = ("r", "response", {"text": "{{ a.text }}"})
    ctx = NodeContext(memory={"name": "ada"}, env={"SITE": "docs"})
    assert answer(events(flow(*nodes, edges=edges), registry, ctx=ctx)) == "ADA DOCS"
    evs = events(flow(*nodes, edges=edges), registry, ctx=NodeContext(memory={"name": "ada"}))
    assert evs[-1]["type"] == "error" and "SITE" in evs[-1]["message"]


# -- node types registered at run time for the tests below ---------------------------------------------------------

def with_types(*classes):
    class Extra:
        @hookimpl
        def privex_node_types(self):
            return list(classes)
    return load_plugins(allow=["nodes"], extra=[Extra()]).node_types


class Emit:
    """Outputs its settings' ``value`` as resolved: a way to put a typed value (list, number, bool) in the flow."""
    name, version = "emit", "1"
    config_schema = {"type": "object"}
    inputs, outputs = ("in",), ("out",)

    def run(self, ctx, inputs):
        return {"value": inputs["config"].get("value")}


class Gate:
    """Blocks until the test opens it; fails (so the flow shows it) when it is never opened."""
    name, version = "gate", "1"
    config_schema = {"type": "object"}
    inputs, outputs = ("in",), ("out",)
    opened = threading.Event()

    def run(self, ctx, inputs):
        if not Gate.opened.wait(10):
            raise RuntimeError("the gate was never opened: the answer had not reached the visitor")
        return {"opened": True}


# -- 1. real streaming ---------------------------------------------------------------------------------------------

def test_the_answer_streams_before_a_later_node_has_finished():
    registry = with_types(Gate)
    Gate.opened.clear()
    g = flow(("s", "start", {}), ("r", "response", {"text": "Hi {{ input }}"}), ("g", "gate", {}),
             edges=[("s", "out", "r"), ("s", "out", "g")])
    graphs.validate(g, registry)
    seen = []
    for event in engine.run(g, registry, NodeContext(), "Ada"):
        seen.append(event)
        if event["type"] == "delta":
            Gate.opened.set()                    # the gate node is running (or about to) and waits for this
    assert answer(seen) == "Hi Ada"
    assert seen[-1]["type"] == "done"
    assert [(e["node_id"], e["node_type"]) for e in seen if e["type"] == "trace"] == \
        [("s", "start"), ("r", "response"), ("g", "gate")]
    assert [t["error"] for t in seen[-1]["trace"]] == [None, None, None]
    assert [e["type"] for e in seen][:4] == ["trace", "trace", "delta", "trace"]


class Rendezvous:
    """Item "a" waits until item "e" has run: in a parallel loop, "a" finishes last."""
    name, version = "rendezvous", "1"
    config_schema = {"type": "object"}
    inputs, outputs = ("in",), ("out",)
    e_ran = threading.Event()

    def run(self, ctx, inputs):
        item = inputs["config"]["item"]
        if item == "a" and not Rendezvous.e_ran.wait(10):
            raise RuntimeError("item e never ran while item a waited")
        if item == "e":
            Rendezvous.e_ran.set()
        return {"text": item.upper()}


def test_parallel_items_finish_in_any_order_but_their_events_come_out_in_item_order():
    registry = with_types(Rendezvous)
    Rendezvous.e_ran.clear()
    g = flow(("s", "start", {}), ("l", "loop", {"items": '["a","b","c","d","e"]', "parallel": True}),
             ("v", "rendezvous", {"item": "{{ l.item }}"}), ("t", "response", {"text": "{{ v.text }}"}),
             ("r", "response", {"text": "={{ l.results | map(attribute='v') | map(attribute='text') | join('') }}"}),
             edges=[("s", "out", "l"), ("l", "body", "v"), ("v", "out", "t"), ("l", "done", "r")])
    evs = events(g, registry)
    assert evs[-1]["type"] == "done", evs[-1]
    assert answer(evs) == "ABCDE=ABCDE"
    assert [t["inputs"]["config"]["item"] for t in evs[-1]["trace"] if t["node_id"] == "v"] == list("abcde")


# -- 2. streaming nodes --------------------------------------------------------------------------------------------

def test_llm_node_streams_its_pieces_as_they_come_into_the_response():
    registry = with_types()
    first_seen = threading.Event()

    def llm_stream(messages, provider):
        yield "Hel"
        if not first_seen.wait(10):
            raise RuntimeError("the first piece was held back")
        yield "lo " + messages[-1]["content"]

    g = flow(("s", "start", {}), ("l", "llm", {"prompt": "{{ input }}"}),
             ("r", "response", {"stream_from": "l", "text": " [1]"}),
             edges=[("s", "out", "l"), ("l", "out", "r")])
    graphs.validate(g, registry)
    deltas = []
    for event in engine.run(g, registry, NodeContext(llm_stream_fn=llm_stream), "Ada"):
        if event["type"] == "delta":
            deltas.append(event["text"])
            first_seen.set()
        last = event
    assert deltas == ["Hel", "lo Ada", " [1]"] and last["type"] == "done"
    assert last["variables"]["l"] == {"text": "Hello Ada"}
    # Without a streaming model the same flow answers in one piece from llm_fn.
    evs = events(g, registry, "Bo", ctx=NodeContext(llm_fn=lambda m, p: "Hi " + m[-1]["content"]))
    assert [e["text"] for e in evs if e["type"] == "delta"] == ["Hi Bo", " [1]"]


class Typewriter:
    """A third-party response node that streams; fails after its first piece when the input says so."""
    name, version, role = "typewriter", "1", "response"
    config_schema = {"type": "object"}
    inputs, outputs = ("in",), ()
    calls = []

    def stream(self, ctx, inputs):
        Typewriter.calls.append(inputs["input"])
        for word in inputs["input"].split():
            if word == "boom":
                raise RuntimeError("the typewriter jammed")
            yield word + " "
        return {"citations": [{"document": "typed.md"}]}


def test_a_streaming_response_node_and_a_failure_midway():
    registry = with_types(Typewriter)
    g = flow(("s", "start", {}), ("t", "typewriter", {}, {"retry": {"attempts": 3, "backoff_ms": 0}}),
             edges=[("s", "out", "t")])
    evs = events(g, registry, "one two")
    assert [(e["type"], e.get("text")) for e in evs if e["type"] in ("delta", "citations")] == \
        [("delta", "one "), ("delta", "two "), ("citations", None)]
    assert evs[-1]["variables"]["t"]["text"] == "one two "
    Typewriter.calls.clear()
    evs = events(g, registry, "one boom")
    assert answer(evs) == "one " and evs[-1]["type"] == "error" and evs[-1]["node_id"] == "t"
    assert "failed after it began to answer" in evs[-1]["message"] and "jammed" in evs[-1]["message"]
    assert Typewriter.calls == ["one boom"]           # no retry once the visitor saw part of the answer


def test_stream_from_is_checked_at_validation(registry):
    def g(source, *extra, edges=()):
        return flow(("s", "start", {}), ("l", "llm", {"prompt": "x"}), ("a", "shout", {"text": "x"}),
                    ("r", "response", {"stream_from": source, "text": ""}), *extra,
                    edges=[("s", "out", "l"), ("l", "out", "a"), ("a", "out", "r"), *edges])
    assert "stream_from names no node 'ghost'" in errors_of(g("ghost"), registry)["nodes"]["r"][0]
    assert "'a' (shout) cannot stream" in errors_of(g("a"), registry)["nodes"]["r"][0]
    assert "only node after 'l'" in errors_of(g("l"), registry)["nodes"]["r"][0]
    looped = flow(("s", "start", {}), ("p", "loop", {"items": "a"}), ("l", "llm", {"prompt": "x"}),
                  ("r", "response", {"stream_from": "l", "text": ""}),
                  edges=[("s", "out", "p"), ("p", "body", "l"), ("l", "out", "r")])
    assert "runs inside loop 'p'" in errors_of(looped, registry)["nodes"]["r"][0]


# -- 3. a pause inside a loop --------------------------------------------------------------------------------------

def ask_each(items, parallel=False):
    return flow(("s", "start", {}), ("l", "loop", {"items": json.dumps(items), "parallel": parallel}),
                ("h", "human_input", {"question": "What about {{ l.item }}?"}),
                ("m", "memory", {"action": "set", "key": "last", "value": "{{ h.answer }}"}),
                ("r", "response", {"text": "{{ input }}: {% for x in l.results %}{{ x.l.item }}={{ x.h.answer }} "
                                            "{% endfor %}(last {{ session.last }})"}),
                edges=[("s", "out", "l"), ("l", "body", "h"), ("h", "out", "m"), ("m", "out", "l"),
                       ("l", "done", "r")])


def test_human_input_in_a_loop_pauses_per_item_and_resumes_into_the_next(registry):
    g = ask_each(["tea", "cake", "jam"])
    g["edges"][3]["target_port"] = "next"
    evs = events(g, registry, "order")
    questions, memory = [], {}
    for reply in ("yes", "no", "maybe"):
        assert evs[-1]["type"] == "pause", evs[-1]
        questions.append(evs[-1]["question"])
        state = json.loads(json.dumps(evs[-1]["state"]))       # stored as JSON between the visitor's messages
        ctx = NodeContext(memory=memory)
        evs = list(engine.resume(state, reply, g, registry, ctx))
        memory = ctx.memory
    assert questions == ["What about tea?", "What about cake?", "What about jam?"]
    assert evs[-1]["type"] == "done"
    assert answer(evs) == "order: tea=yes cake=no jam=maybe (last maybe)"


def test_nested_loops_resume_at_the_right_item(registry):
    g = flow(("s", "start", {}), ("o", "loop", {"items": '["x","y"]'}), ("i", "loop", {"items": '["1","2"]'}),
             ("h", "human_input", {"question": "{{ o.item }}{{ i.item }}?"}),
             ("r", "response", {"text": "{% for a in o.results %}{% for b in a.i.results %}{{ b.h.answer }}"
                                         "{% endfor %}{% endfor %}"}),
             edges=[("s", "out", "o"), ("o", "body", "i"), ("i", "body", "h"), ("i", "done", "o"),
                    ("o", "done", "r")])
    evs = events(g, registry)
    asked = []
    while evs[-1]["type"] == "pause":
        asked.append(evs[-1]["question"])
        evs = list(engine.resume(json.loads(json.dumps(evs[-1]["state"])), asked[-1].upper(), g, registry,
                                 NodeContext()))
    assert asked == ["x1?", "x2?", "y1?", "y2?"]
    assert answer(evs) == "X1?X2?Y1?Y2?"


class Asker:
    """A third-party node that pauses without declaring ``pauses``: caught at run time in a parallel loop."""
    name, version = "asker", "1"
    config_schema = {"type": "object"}
    inputs, outputs = ("in",), ("out",)

    def run(self, ctx, inputs):
        return {"answer": inputs["answer"]} if "answer" in inputs else {"_pause": "?"}


def test_a_pause_in_a_parallel_loop_is_refused(registry):
    e = errors_of(ask_each(["a", "b"], parallel=True), registry)
    assert "runs its items in parallel" in e["nodes"]["l"][0] and "'h'" in e["nodes"]["l"][0]
    g = ask_each(["a", "b"], parallel=True)
    g["nodes"][2] = {"id": "h", "type": "asker", "config": {}}
    evs = events(g, with_types(Asker))
    assert evs[-1]["type"] == "error" and "inside the parallel loop 'l'" in evs[-1]["message"]


# -- 4. node versions ----------------------------------------------------------------------------------------------

class GreeterV1:
    name, version = "greeter", "1"
    config_schema = {"type": "object", "required": ["greeting"], "additionalProperties": False,
                     "properties": {"greeting": {"type": "string"}}}
    inputs, outputs = ("in",), ("out",)

    def run(self, ctx, inputs):
        return {"text": inputs["config"]["greeting"]}


class GreeterV2:
    """Version 2 renamed ``greeting`` to ``salutation`` and migrates stored version-1 settings."""
    name, version = "greeter", "2"
    config_schema = {"type": "object", "required": ["salutation"], "additionalProperties": False,
                     "properties": {"salutation": {"type": "string"}}}
    inputs, outputs = ("in",), ("out",)

    def migrate(self, config, from_version):
        if from_version != "1":
            raise ValueError(f"no way from version {from_version}")
        return {"salutation": config.pop("greeting")}

    def run(self, ctx, inputs):
        return {"text": inputs["config"]["salutation"] + "!"}


class GreeterV2NoMigrate:
    name, version, config_schema, inputs, outputs = "greeter", "2", GreeterV2.config_schema, ("in",), ("out",)
    run = GreeterV2.run


def greeter_flow():
    return flow(("s", "start", {}), ("g", "greeter", {"greeting": "Hello {{ input }}"}),
                ("r", "response", {"text": "{{ g.text }}"}), edges=[("s", "out", "g"), ("g", "out", "r")])


def test_a_node_stored_with_an_older_version_is_migrated_or_refused():
    g = greeter_flow()
    assert graphs.validate(g, with_types(GreeterV1)) == []
    assert [n["version"] for n in g["nodes"]] == ["1", "1", "1"]      # a node without version gets the installed one
    stored = json.loads(json.dumps(g))
    v2 = with_types(GreeterV2)
    # A stored flow runs on the upgraded plugin without being saved again: the engine migrates a copy.
    assert answer(list(engine.run(stored, v2, NodeContext(), "Ada"))) == "Hello Ada!"
    assert stored["nodes"][1] == {"id": "g", "type": "greeter", "version": "1",
                                  "config": {"greeting": "Hello {{ input }}"}}
    # Saving it again migrates it for good and says so.
    assert graphs.validate(stored, v2) == ["Node 'g': settings migrated from version 1 to 2."]
    assert stored["nodes"][1]["version"] == "2" and stored["nodes"][1]["config"] == {"salutation": "Hello {{ input }}"}
    assert answer(events(stored, v2, "Bo")) == "Hello Bo!"
    # A type that cannot migrate: a per-node error naming both versions, at validation and at run time.
    old = greeter_flow()
    old["nodes"][1]["version"] = "1"
    no_migrate = with_types(GreeterV2NoMigrate)
    e = errors_of(json.loads(json.dumps(old)), no_migrate)
    assert e["nodes"] == {"g": ["Stored with version 1, installed 2; the 'greeter' node type cannot migrate it "
                                "(it has no migrate())."]}
    evs = list(engine.run(old, no_migrate, NodeContext(), "x"))
    assert evs[-1]["type"] == "error" and evs[-1]["node_id"] == "g" and "version 1, installed 2" in evs[-1]["message"]
    old["nodes"][1]["version"] = "7"
    assert "migrating failed: no way from version 7" in errors_of(old, v2)["nodes"]["g"][0]


# -- 5. policies are checked when the flow is saved ----------------------------------------------------------------

@pytest.mark.parametrize("policy, expected", [
    ({"retry": {"attempts": 0}}, "retry/attempts: 0 is less than the minimum of 1"),
    ({"retry": {"attempts": 11}}, "retry/attempts: 11 is greater than the maximum of 10"),
    ({"retry": {"attempts": "3"}}, "retry/attempts: '3' is not of type 'integer'"),
    ({"retry": {"backoff_ms": -1}}, "retry/backoff_ms: -1 is less than the minimum of 0"),
    ({"retry": {"backoff_ms": 60001}}, "retry/backoff_ms: 60001 is greater than the maximum of 60000"),
    ({"retry": {"tries": 2}}, "retry: Additional properties are not allowed ('tries' was unexpected)"),
    ({"retry": 3}, "retry: 3 is not of type 'object'"),
    ({"on_error": "explode"}, "on_error: 'explode' is not one of ['stop', 'default', 'error_port']"),
    ({"on_error": "default", "default": "x"}, "default: 'x' is not of type 'object'"),
    ({"on_error": "default"}, "on_error is 'default' but the node has no default outputs"),
    ({"on_error": "error_port"}, "on_error is 'error_port' but no edge leaves this node's error port"),
])
def test_each_bad_policy_is_a_node_error(registry, policy, expected):
    nodes, edges = linear(("a", "shout", {"text": "x"}, policy))
    e = errors_of(flow(*nodes, edges=edges), registry)
    assert list(e["nodes"]) == ["a"] and len(e["nodes"]["a"]) == 1 and e["nodes"]["a"][0].startswith(expected)


def test_good_policies_pass(registry):
    nodes, edges = linear(("a", "shout", {"text": "x"}, {"retry": {"attempts": 10, "backoff_ms": 60000},
                                                          "on_error": "default", "default": {"text": "d"}}))
    assert graphs.validate(flow(*nodes, edges=edges), registry) == []
    g = flow(("s", "start", {}), ("a", "shout", {"text": "x"}, {"on_error": "error_port"}),
             ("r", "response", {"text": "x"}), edges=[("s", "out", "a"), ("a", "error", "r")])
    assert graphs.validate(g, registry) == []


# -- 6. typed values -----------------------------------------------------------------------------------------------

def test_a_one_expression_template_resolves_to_the_value_itself():
    scope = {"xs": [1, "b"], "n": 3, "flag": False, "none": None, "rows": [{"v": 1}, {"v": 2}]}
    assert templates.render("{{ xs }}", scope) == [1, "b"]
    assert templates.render("  {{ n }} ", scope) == 3
    assert templates.render("{{ flag }}", scope) is False and templates.render("{{ none }}", scope) is None
    assert templates.render("{{ rows | map(attribute='v') }}", scope) == [1, 2]
    assert templates.render("{{ n }}!", scope) == "3!"                   # anything more is text, as before
    assert templates.render("{{ n }}{{ n }}", scope) == "33"
    assert templates.render("{{ xs | length }}", scope) == 2
    with pytest.raises(templates.TemplateFailed, match="'missing' is undefined"):
        templates.render("{{ missing }}", scope)
    with pytest.raises(templates.TemplateFailed, match="unsafe"):
        templates.render("{{ xs.__class__ }}", scope)
    with pytest.raises(templates.TemplateFailed, match="more than 100000"):
        templates.render("{{ big }}", {"big": ["x" * 1000] * 101})


def test_a_list_output_feeds_a_loop_directly(registry):
    reg = with_types(Emit, Shout)
    g = flow(("s", "start", {}), ("e", "emit", {"value": ["ab", "cd"]}), ("l", "loop", {"items": "{{ e.value }}"}),
             ("v", "shout", {"text": "{{ l.item }}"}),
             ("r", "response", {"text": "{{ l.results | map(attribute='v') | map(attribute='text') | join('+') }}"}),
             edges=[("s", "out", "e"), ("e", "out", "l"), ("l", "body", "v"), ("l", "done", "r")])
    assert answer(events(g, reg)) == "AB+CD"


def condition_answer(reg, left_value, op, right, text="hi"):
    g = flow(("s", "start", {}), ("e", "emit", {"value": left_value}),
             ("c", "condition", {"cases": [{"left": "{{ e.value }}", "op": op, "right": right, "port": "if"}]}),
             ("y", "response", {"text": "yes"}), ("n", "response", {"text": "no"}),
             edges=[("s", "out", "e"), ("e", "out", "c"), ("c", "if", "y"), ("c", "else", "n")])
    evs = events(g, reg, text)
    return answer(evs) if evs[-1]["type"] == "done" else evs[-1]["message"]


@pytest.mark.parametrize("left, op, right, expected", [
    (9, "<", "10", "yes"),                      # numbers, where text would say "9" > "10"
    ("9", ">=", "10", "no"),
    ("10", "==", "10.0", "yes"),
    (2.5, "!=", "2.50", "no"),
    (True, "==", "true", "yes"),
    ("False", "==", "false", "yes"),
    (True, "==", "1", "no"),                    # a boolean is not a number
    (["a", "b"], "==", '["a", "b"]', "yes"),
    ({"k": 1}, "==", '{"k": 1}', "yes"),
    (["a", "b"], "==", "a,b", "no"),
    (["red", "green"], "contains", "green", "yes"),
    (["red", "green"], "contains", "gre", "no"),  # membership, not text
    ([1, 2], "contains", "2", "yes"),
    ({"k": 1}, "contains", "k", "yes"),
    ("Hello", "contains", "ELL", "yes"),
    ([], "is_empty", "", "yes"),
    ({}, "is_empty", "", "yes"),
    (None, "is_empty", "", "yes"),
    ("  ", "is_empty", "", "yes"),
    (0, "is_empty", "", "no"),
    ([0], "is_not_empty", "", "yes"),
    ("2026-01-02", ">", "2025-12-31", "yes"),   # two texts compare as text
])
def test_condition_comparisons_are_typed(left, op, right, expected):
    assert condition_answer(with_types(Emit), left, op, right) == expected


def test_ordering_a_list_against_a_number_is_a_clear_node_error():
    message = condition_answer(with_types(Emit), ["a"], "<", "3")
    assert message.startswith("Node 'c' failed: ValueError: Cannot compare ['a'] < '3'")


@pytest.mark.parametrize("transform, value, expected", [
    ("float", "2.5", 2.5), ("float", "{{ input }}", 7.0), ("int", "3.0", 3), ("bool", "yes", True),
    ("bool", "0", False), ("bool", "", False), ("list", '["a", 1]', ["a", 1]), ("list", "a, b,,c ", ["a", "b", "c"]),
    ("json", '{"a": [1]}', {"a": [1]}), ("upper", "{{ input }}x", "7X"), ("none", "{{ input }}", "7"),
])
def test_variable_transforms(registry, transform, value, expected):
    nodes, edges = linear(("v", "variable", {"values": {"x": value}, "transform": transform}))
    nodes[-1] = ("r", "response", {"text": "ok"})
    evs = events(flow(*nodes, edges=edges), registry, "7")
    assert evs[-1]["variables"]["v"]["x"] == expected


@pytest.mark.parametrize("transform, value, message", [
    ("float", "abc", "x: cannot transform to float: 'abc' is not a number"),
    ("int", "2.5", "x: cannot transform to int: '2.5' is not a whole number"),
    ("bool", "perhaps", "x: cannot transform to bool: 'perhaps' is not true or false"),
    ("list", "[1,", "x: cannot transform to list"),
])
def test_variable_transform_failures_name_the_value(registry, transform, value, message):
    nodes, edges = linear(("v", "variable", {"values": {"x": value}, "transform": transform}))
    evs = events(flow(*nodes, edges=edges), registry)
    assert evs[-1]["type"] == "error" and message in evs[-1]["message"]


def test_the_wall_budget_stops_a_parallel_loop_stuck_in_a_slow_item():
    registry = with_types(Gate)
    Gate.opened.clear()
    g = flow(("s", "start", {}), ("l", "loop", {"items": '["a","b"]', "parallel": True}), ("g", "gate", {}),
             ("r", "response", {"text": "end"}), edges=[("s", "out", "l"), ("l", "body", "g"), ("l", "done", "r")])
    try:
        evs = events(g, registry, wall_seconds=0.5)
    finally:
        Gate.opened.set()                        # let the stuck items finish
    assert evs[-1]["type"] == "error" and evs[-1]["message"] == "The chatflow ran longer than 0.5 s."
    assert evs[-1]["node_id"] == "l"


@pytest.mark.parametrize("graph, message", [
    ({"nodes": ["start"], "edges": []}, "Each node and each edge of a chatflow is an object."),
    ({"nodes": [{"id": 1, "type": "start"}], "edges": []}, "Each node of a chatflow has an id, a non-empty string."),
    ({"nodes": [{"id": "s", "type": "start"}], "edges": [{"source": ["s"], "target": "s"}]},
     "Each edge of a chatflow names its source and target nodes by id (a string)."),
])
def test_hostile_shapes_are_refused_not_crashed_on(registry, graph, message):
    with pytest.raises(Invalid) as caught:
        graphs.validate(graph, registry)
    assert str(caught.value) == message


def test_a_state_that_does_not_fit_the_flow_is_refused_with_a_message(registry):
    g = ask_each(["tea", "cake"])
    state = events(g, registry)[-1]["state"]
    broken = [{**state, "paused_at": "ghost"}, {**state, "frames": "x"}, {**state, "frames": []},
              {**state, "frames": [state["frames"][0], {**state["frames"][1], "index": 5}]},
              {**state, "frames": [state["frames"][0], {**state["frames"][1], "todo": ["ghost"]}]},
              {**state, "frames": [state["frames"][1]]}, {"paused_at": "h"}]
    for bad in broken:
        evs = list(engine.resume(bad, "yes", g, registry, NodeContext()))
        assert evs == [{"type": "error", "message": "The paused run's state does not fit this chatflow; start again.",
                        "node_id": None, "trace": []}], bad
    assert list(engine.resume(state, "yes", g, registry, NodeContext()))[-1]["question"] == "What about cake?"


@pytest.mark.parametrize("name", ["items", "keys", "values", "get", "update", "pop", "copy"])
def test_an_output_named_like_a_dict_method_is_the_output(registry, name):
    """``{{ v.items }}`` is the variable node's output ``items``, not the dict's method of that name."""
    g = flow(("s", "start", {}), ("v", "variable", {"values": {name: "a,b"}, "transform": "list"}),
             ("r", "response", {"text": f"{{{{ v.{name} | join('+') }}}}"}),
             edges=[("s", "out", "v"), ("v", "out", "r")])
    assert answer(events(g, registry)) == "a+b"
