"""The chatflow engine's own overhead per node: a 50-node chain of trivial nodes, median and p95 over many runs.

Run: python -m benchmarks.chatflow_engine   (not part of benchmarks/__main__ yet). Aim: < 1 ms per node.
The time spent inside the nodes' ``run`` (measured around each call) is taken out, so what remains is the engine:
templates, budgets, the trace, scheduling and the event generators the runs are consumed through.
"""

from __future__ import annotations

import statistics
import time

from privex import hookimpl
from privex.plugins import load_plugins
from privex.services.chatflows import engine, graph as graphs
from privex.services.chatflows.context import NodeContext

NODES, RUNS = 50, 200


class Noop:
    name, version = "bench_noop", "1"
    config_schema = {"type": "object"}
    inputs, outputs = ("in",), ("out",)
    spent = [0.0]                                   # seconds inside run(), taken out of the engine's share

    def run(self, ctx, inputs):
        began = time.perf_counter()
        out = {"text": "x"}
        Noop.spent[0] += time.perf_counter() - began
        return out


class _Plugin:
    @hookimpl
    def privex_node_types(self):
        return [Noop]


def main():
    registry = load_plugins(allow=["nodes"], extra=[_Plugin()]).node_types
    ids = ["s"] + [f"n{i}" for i in range(NODES - 2)] + ["r"]
    nodes = ([{"id": "s", "type": "start", "config": {}}]
             + [{"id": i, "type": "bench_noop", "config": {"v": "{{ input }}"}} for i in ids[1:-1]]
             + [{"id": "r", "type": "response", "config": {"text": "{{ n0.text }}"}}])
    edges = [{"source": a, "source_port": "out", "target": b, "target_port": "in"} for a, b in zip(ids, ids[1:])]
    g = {"nodes": nodes, "edges": edges}
    graphs.validate(g, registry)
    per_node = []
    for _ in range(RUNS):
        Noop.spent[0] = 0.0
        began = time.perf_counter()
        events = list(engine.run(g, registry, NodeContext(), "hello"))
        per_node.append((time.perf_counter() - began - Noop.spent[0]) * 1000 / NODES)
        assert events[-1]["type"] == "done" and len(events) == NODES + 2     # a trace per node, a delta, done
    began = time.perf_counter()
    for _ in range(20):
        graphs.validate(g, registry)
    validate_ms = (time.perf_counter() - began) * 1000 / 20
    per_node.sort()
    return statistics.median(per_node), per_node[int(0.95 * len(per_node)) - 1], validate_ms


def run() -> str:
    """The section ``make bench`` appends to BENCHMARKS.md."""
    median, p95, validate_ms = main()
    return ("\n### Chatflow engine overhead (`python -m benchmarks.chatflow_engine`)\n\n"
            f"A {NODES}-node chain (start, {NODES - 2} trivial nodes each rendering one template, response), run "
            f"{RUNS} times in one process; the time spent inside the nodes' own `run` is taken out, so this is the "
            "engine's work per node: budgets, templates, policies, trace and events. The issue's aim: under 1 ms per "
            "node.\n\n"
            "| median ms/node | p95 ms/node | validate ms/flow |\n|---|---|---|\n"
            f"| {median:.3f} | {p95:.3f} | {validate_ms:.2f} |\n")


if __name__ == "__main__":
    print(run())
