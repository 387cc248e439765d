"""Validate a chatflow graph against the installed node types before it is saved or run."""

from __future__ import annotations

import json

import jsonschema

from privex.services.errors import Invalid

MAX_NODES = 500
MAX_CONFIG_BYTES = 64_000


def _lookup(registry, name):
    """The class of a node type, None when not installed (the registry raises NotInstalled on a miss)."""
    try:
        return registry[name] if isinstance(name, str) else None
    except LookupError:
        return None


def _role(cls, role):
    return getattr(cls, "role", None) == role


def validate(graph: dict, registry: dict) -> None:
    """Raise ``Invalid`` with ``errors={"nodes": {id: [...]}, "edges": {index: [...]}, "graph": [...]}``."""
    node_errors: dict[str, list[str]] = {}
    edge_errors: dict[str, list[str]] = {}
    graph_errors: list[str] = []
    nodes = graph.get("nodes") if isinstance(graph, dict) else None
    edges = graph.get("edges", []) if isinstance(graph, dict) else None
    if not isinstance(nodes, list) or not isinstance(edges, list):
        raise Invalid("A chatflow is an object with a list of nodes and a list of edges.")
    if len(nodes) > MAX_NODES:
        raise Invalid(f"A chatflow has at most {MAX_NODES} nodes; this one has {len(nodes)}.")
    by_id: dict[str, dict] = {}
    for node in nodes:
        nid = str(node.get("id", ""))
        errs = node_errors.setdefault(nid, [])
        if nid in by_id:
            errs.append(f"Duplicate node id {nid!r}.")
            continue
        by_id[nid] = node
        cls = _lookup(registry, node.get("type"))
        if cls is None:
            errs.append(f"Unknown node type {node.get('type')!r}; installed: {', '.join(sorted(registry))}.")
            continue
        config = node.get("config", {})
        if len(json.dumps(config)) > MAX_CONFIG_BYTES:
            errs.append(f"The settings are larger than {MAX_CONFIG_BYTES} bytes.")
            continue
        for err in jsonschema.Draft202012Validator(cls.config_schema).iter_errors(config):
            where = "/".join(str(p) for p in err.absolute_path)
            errs.append(f"{where + ': ' if where else ''}{err.message}")
    for i, edge in enumerate(edges):
        errs = []
        for end, port_attr in (("source", "outputs"), ("target", "inputs")):
            node = by_id.get(edge.get(end))
            if node is None:
                errs.append(f"The {end} node {edge.get(end)!r} does not exist.")
                continue
            cls = _lookup(registry, node.get("type"))
            port = edge.get(f"{end}_port")
            ports = list(getattr(cls, port_attr, ())) + (["error"] if end == "source" else [])
            if cls is not None and port not in ports:
                errs.append(f"Node {edge.get(end)!r} has no {end} port {port!r}; it has {', '.join(ports)}.")
        if errs:
            edge_errors[str(i)] = errs
    types = {nid: _lookup(registry, n.get("type")) for nid, n in by_id.items()}
    starts = [nid for nid, c in types.items() if c is not None and _role(c, "start")]
    if not starts:
        graph_errors.append("The chatflow needs a start node.")
    elif len(starts) > 1:
        graph_errors.append("The chatflow has more than one start node.")
    if not any(c is not None and _role(c, "response") for c in types.values()):
        graph_errors.append("The chatflow needs a response node.")
    adj: dict[str, list[str]] = {nid: [] for nid in by_id}
    for edge in edges:
        if edge.get("source") in adj and edge.get("target") in adj:
            adj[edge["source"]].append(edge["target"])
    if starts:
        seen, todo = set(starts[:1]), [starts[0]]
        while todo:
            for nxt in adj[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        for nid in by_id:
            if nid not in seen:
                node_errors.setdefault(nid, []).append("No path from the start node reaches this node.")
    # A cycle is allowed only when it passes through a loop node (its "body" edges come back to it).
    colour: dict[str, int] = {}

    def visit(nid, stack):
        colour[nid] = 1
        for nxt in adj[nid]:
            if colour.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nid]
                if not any(types.get(c) is not None and _role(types[c], "loop") for c in cycle):
                    node_errors.setdefault(nid, []).append(
                        f"This node closes a cycle ({' -> '.join(cycle + [nxt])}) that no loop node bounds.")
            elif colour.get(nxt) is None:
                visit(nxt, stack + [nxt])
        colour[nid] = 2

    for nid in by_id:
        if colour.get(nid) is None:
            visit(nid, [nid])
    node_errors = {k: v for k, v in node_errors.items() if v}
    if node_errors or edge_errors or graph_errors:
        raise Invalid("The chatflow has errors.",
                      {"nodes": node_errors, "edges": edge_errors, "graph": graph_errors})
