"""Validate a chatflow graph against the installed node types before it is saved or run.

Also where stored node versions meet installed ones (``upgrade``): a node stored with another version than its
installed type's is migrated by the type's ``migrate(config, from_version)`` or refused, naming both versions.
"""

from __future__ import annotations

import copy
import functools
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


# Per-node policies sit beside ``config`` (engine.py); one schema for every node type.
POLICY_SCHEMA = {"type": "object", "properties": {
    "retry": {"type": "object", "additionalProperties": False, "properties": {
        "attempts": {"type": "integer", "minimum": 1, "maximum": 10},
        "backoff_ms": {"type": "number", "minimum": 0, "maximum": 60000}}},
    "on_error": {"enum": ["stop", "default", "error_port"]},
    "default": {"type": "object"}}}
_POLICY = jsonschema.Draft202012Validator(POLICY_SCHEMA)


@functools.lru_cache(maxsize=256)
def _schema_validator(cls):
    """One validator per node type: building it is most of validating a small config."""
    return jsonschema.Draft202012Validator(cls.config_schema)


def _migrated(node, cls):
    """(config, note, error) for a node whose stored version may differ from its installed type's."""
    installed, stored = str(getattr(cls, "version", "")), node.get("version")
    config = node.get("config", {})
    if stored is None or str(stored) == installed:
        return config, None, None
    if not hasattr(cls, "migrate"):
        return config, None, (f"Stored with version {stored}, installed {installed}; the {node.get('type')!r} "
                              "node type cannot migrate it (it has no migrate()).")
    try:
        config = cls().migrate(copy.deepcopy(config), str(stored))
    except Exception as exc:                        # a plugin's migration failing is a node error, not a crash
        return config, None, f"Stored with version {stored}, installed {installed}; migrating failed: {exc}"
    if not isinstance(config, dict):
        return node.get("config", {}), None, (f"Stored with version {stored}, installed {installed}; migrate() "
                                              f"returned {type(config).__name__}, not settings.")
    return config, f"Node {node.get('id')!r}: settings migrated from version {stored} to {installed}.", None


def upgrade(graph: dict, registry: dict) -> tuple[dict, dict[str, str]]:
    """The graph as the installed node types expect it, and {node id: error} for nodes that cannot be migrated.

    Returns the graph itself when every stored version matches (the common case: no copy), else a migrated copy."""
    changed, errors = None, {}
    for i, node in enumerate(graph["nodes"]):
        if not isinstance(node, dict):
            continue
        cls = _lookup(registry, node.get("type"))
        if cls is None or node.get("version") is None or str(node["version"]) == str(getattr(cls, "version", "")):
            continue
        config, note, error = _migrated(node, cls)
        if error:
            errors[str(node.get("id"))] = error
            continue
        changed = changed or {**graph, "nodes": list(graph["nodes"])}
        changed["nodes"][i] = {**node, "config": config, "version": str(cls.version)}
    return changed or graph, errors


def _loop_bodies(by_id, types, edges) -> dict[str, set[str]]:
    """For each loop node, the nodes its ``body`` edges reach before coming back to it."""
    by_port: dict[str, list[tuple[str, str]]] = {nid: [] for nid in by_id}
    for edge in edges:
        if edge.get("source") in by_port and edge.get("target") in by_id:
            by_port[edge["source"]].append((edge.get("source_port"), edge["target"]))
    bodies = {}
    for nid, cls in types.items():
        if cls is None or not _role(cls, "loop"):
            continue
        seen = set()
        todo = [t for port, t in by_port[nid] if port == "body"]
        while todo:
            cur = todo.pop()
            if cur != nid and cur not in seen:
                seen.add(cur)
                todo.extend(t for _, t in by_port[cur])
        bodies[nid] = seen
    return bodies


def _policy_errors(node, edges) -> list[str]:
    policy = {k: node[k] for k in ("retry", "on_error", "default") if k in node}
    if not policy:
        return []
    errs = [f"{'/'.join(str(p) for p in err.absolute_path) or 'policy'}: {err.message}"
            for err in _POLICY.iter_errors(policy)]
    if node.get("on_error") == "default" and "default" not in node:
        errs.append("on_error is 'default' but the node has no default outputs ('default': {...}).")
    if node.get("on_error") == "error_port" and not any(
            e.get("source") == node.get("id") and e.get("source_port") == "error" for e in edges):
        errs.append("on_error is 'error_port' but no edge leaves this node's error port.")
    return errs


def _flow_errors(by_id, types, edges, node_errors):
    """Rules that span nodes: what may stream into a response, and what may pause inside a parallel loop."""
    bodies = _loop_bodies(by_id, types, edges)
    for lid, body in bodies.items():
        config = by_id[lid].get("config")
        if not isinstance(config, dict) or not config.get("parallel"):
            continue
        for nid in sorted(body):
            if types.get(nid) is not None and getattr(types[nid], "pauses", False):
                node_errors.setdefault(lid, []).append(
                    f"This loop runs its items in parallel, but node {nid!r} in its body asks the visitor a "
                    "question, which needs the items one by one: turn off parallel.")
    for rid, node in by_id.items():
        source = (node.get("config") or {}).get("stream_from") if isinstance(node.get("config"), dict) else None
        if not source or types.get(rid) is None or not _role(types[rid], "response"):
            continue
        errs = node_errors.setdefault(rid, [])
        if not isinstance(source, str) or source not in by_id:
            errs.append(f"stream_from names no node {source!r}.")
            continue
        if not hasattr(types.get(source), "stream"):
            errs.append(f"stream_from: node {source!r} ({by_id[source].get('type')}) cannot stream its text.")
        nexts = [e.get("target") for e in edges if e.get("source") == source and e.get("source_port") != "error"]
        if not nexts or any(t != rid for t in nexts):
            errs.append(f"stream_from: this response node must be the only node after {source!r}, so that what "
                        "streams is the answer.")
        loops = sorted(lid for lid, body in bodies.items() if source in body)
        if loops:
            errs.append(f"stream_from: node {source!r} runs inside loop {loops[0]!r}, once per item; it cannot "
                        "stream the answer.")


def validate(graph: dict, registry: dict) -> list[str]:
    """Raise ``Invalid`` with ``errors={"nodes": {id: [...]}, "edges": {index: [...]}, "graph": [...]}``.

    Brings the graph up to the installed node types in place — a node without ``version`` gets its type's, a node
    stored with another version has its settings migrated — so the caller saves what will run; returns a note per
    migration."""
    notes: list[str] = []
    node_errors: dict[str, list[str]] = {}
    edge_errors: dict[str, list[str]] = {}
    graph_errors: list[str] = []
    nodes = graph.get("nodes") if isinstance(graph, dict) else None
    edges = graph.get("edges", []) if isinstance(graph, dict) else None
    if not isinstance(nodes, list) or not isinstance(edges, list):
        raise Invalid("A chatflow is an object with a list of nodes and a list of edges.")
    if not all(isinstance(x, dict) for x in nodes + edges):
        raise Invalid("Each node and each edge of a chatflow is an object.")
    # Ids are text everywhere (the engine looks nodes up by them): a number or a list here is refused, not guessed.
    if not all(isinstance(n.get("id"), str) and n["id"] for n in nodes):
        raise Invalid("Each node of a chatflow has an id, a non-empty string.")
    if not all(isinstance(e.get("source"), str) and isinstance(e.get("target"), str) for e in edges):
        raise Invalid("Each edge of a chatflow names its source and target nodes by id (a string).")
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
        config, note, error = _migrated(node, cls)
        if error:
            errs.append(error)
            continue
        if note:
            notes.append(note)
            node["config"] = config
        node["version"] = str(getattr(cls, "version", ""))
        errs.extend(_policy_errors(node, edges if isinstance(edges, list) else []))
        if len(json.dumps(config)) > MAX_CONFIG_BYTES:
            errs.append(f"The settings are larger than {MAX_CONFIG_BYTES} bytes.")
            continue
        for err in _schema_validator(cls).iter_errors(config):
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
    _flow_errors(by_id, types, edges, node_errors)
    node_errors = {k: v for k, v in node_errors.items() if v}
    if node_errors or edge_errors or graph_errors:
        raise Invalid("The chatflow has errors.",
                      {"nodes": node_errors, "edges": edge_errors, "graph": graph_errors})
    return notes
