"""The built-in node types. Each only uses ``ctx`` (never ``privex.services``) so it runs anywhere the engine does."""

from __future__ import annotations

import json

_STR = {"type": "string", "maxLength": 20000}


class StartNode:
    name, version, role = "start", "1", "start"
    config_schema = {"type": "object", "additionalProperties": False, "properties": {}}
    inputs, outputs = (), ("out",)

    def run(self, ctx, inputs):
        return {"text": inputs.get("input")}


class ResponseNode:
    """The flow's answer: ``text`` (a template) and optionally the citations of a knowledge base node."""
    name, version, role = "response", "1", "response"
    config_schema = {"type": "object", "required": ["text"], "additionalProperties": False,
                     "properties": {"text": _STR, "citations_from": {"type": "string"}}}
    inputs, outputs = ("in",), ()

    def run(self, ctx, inputs):
        out = {"text": inputs["config"]["text"]}
        source = inputs["config"].get("citations_from")
        if source:
            out["citations"] = (ctx.variables.get(source) or {}).get("citations", [])
        return out


class VariableNode:
    """Set named values (templates), optionally transformed: ``upper``, ``lower``, ``strip``, ``json``, ``int``."""
    name, version = "variable", "1"
    config_schema = {"type": "object", "required": ["values"], "additionalProperties": False, "properties": {
        "values": {"type": "object", "additionalProperties": _STR},
        "transform": {"enum": ["none", "upper", "lower", "strip", "json", "int"]}}}
    inputs, outputs = ("in",), ("out",)
    _TRANSFORMS = {"none": lambda v: v, "upper": str.upper, "lower": str.lower, "strip": str.strip,
                   "json": json.loads, "int": int}

    def run(self, ctx, inputs):
        fn = self._TRANSFORMS[inputs["config"].get("transform", "none")]
        return {k: fn(v) for k, v in inputs["config"]["values"].items()}


def _compare(op, left, right):
    def num(x):
        return float(x)
    if op == "is_empty":
        return left in (None, "", [], {}) or str(left).strip() == ""
    if op == "is_not_empty":
        return not _compare("is_empty", left, right)
    if op in ("<", "<=", ">", ">="):
        a, b = num(left), num(right)
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
    if op == "==":
        return str(left) == str(right)
    if op == "!=":
        return str(left) != str(right)
    if op == "contains":
        return str(right).lower() in str(left).lower()
    if op == "starts_with":
        return str(left).lower().startswith(str(right).lower())
    if op == "ends_with":
        return str(left).lower().endswith(str(right).lower())
    raise ValueError(f"Unknown comparison {op!r}")


class ConditionNode:
    """If / elif / else: the first matching case's ``port`` is followed, else ``else``."""
    name, version = "condition", "1"
    config_schema = {"type": "object", "required": ["cases"], "additionalProperties": False, "properties": {
        "cases": {"type": "array", "maxItems": 20, "items": {
            "type": "object", "required": ["left", "op", "port"], "additionalProperties": False,
            "properties": {"left": _STR, "right": _STR, "port": {"enum": ["if", "elif1", "elif2", "elif3"]},
                           "op": {"enum": ["==", "!=", "<", "<=", ">", ">=", "contains", "starts_with",
                                          "ends_with", "is_empty", "is_not_empty"]}}}}}}
    inputs, outputs = ("in",), ("if", "elif1", "elif2", "elif3", "else")

    def run(self, ctx, inputs):
        for case in inputs["config"]["cases"]:
            if _compare(case["op"], case["left"], case.get("right", "")):
                return {"_port": case["port"], "matched": case["port"]}
        return {"_port": "else", "matched": "else"}


class LoopNode:
    """Run the ``body`` edges once per item (``items``: a JSON list template or a variable path), then ``done``."""
    name, version, role = "loop", "1", "loop"
    config_schema = {"type": "object", "required": ["items"], "additionalProperties": False, "properties": {
        "items": {"type": "string"}, "parallel": {"type": "boolean"}}}
    inputs, outputs = ("in", "next"), ("body", "done")

    def run(self, ctx, inputs):
        raw = inputs["config"]["items"]
        items = json.loads(raw) if raw.strip().startswith("[") else [x for x in raw.split("\n") if x.strip()]
        return {"items": items}


class MemoryNode:
    """Read or write a session value kept between the visitor's messages."""
    name, version = "memory", "1"
    config_schema = {"type": "object", "required": ["action", "key"], "additionalProperties": False, "properties": {
        "action": {"enum": ["get", "set"]}, "key": {"type": "string", "minLength": 1, "maxLength": 100},
        "value": _STR, "default": _STR}}
    inputs, outputs = ("in",), ("out",)

    def run(self, ctx, inputs):
        c = inputs["config"]
        if c["action"] == "set":
            ctx.memory_set(c["key"], c.get("value", ""))
            return {"value": c.get("value", "")}
        return {"value": ctx.memory_get(c["key"], c.get("default", ""))}


class LlmNode:
    name, version = "llm", "1"
    config_schema = {"type": "object", "required": ["prompt"], "additionalProperties": False, "properties": {
        "prompt": _STR, "system": _STR, "provider": {"type": "object"}}}
    inputs, outputs = ("in",), ("out",)

    def run(self, ctx, inputs):
        c = inputs["config"]
        messages = ([{"role": "system", "content": c["system"]}] if c.get("system") else []) + \
            [{"role": "user", "content": c["prompt"]}]
        return {"text": ctx.llm(messages, c.get("provider"))}


class KnowledgeBaseNode:
    name, version = "knowledge_base", "1"
    config_schema = {"type": "object", "required": ["knowledge_bases", "query"], "additionalProperties": False,
                     "properties": {"knowledge_bases": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                                    "query": _STR, "mode": {"enum": ["semantic", "keyword", "hybrid"]},
                                    "top_k": {"type": "integer", "minimum": 1, "maximum": 20}}}
    inputs, outputs = ("in",), ("out",)

    def run(self, ctx, inputs):
        c = inputs["config"]
        chunks = ctx.retrieve(c["knowledge_bases"], c["query"], c.get("mode", "hybrid"), c.get("top_k", 4))
        return {"citations": chunks, "text": "\n\n".join(str(ch.get("text", "")) for ch in chunks)}


class HumanInputNode:
    """Ask the visitor a question; the flow pauses until ``resume`` brings the answer."""
    name, version = "human_input", "1"
    config_schema = {"type": "object", "required": ["question"], "additionalProperties": False,
                     "properties": {"question": _STR}}
    inputs, outputs = ("in",), ("out",)

    def run(self, ctx, inputs):
        if "answer" not in inputs:
            return {"_pause": inputs["config"]["question"]}
        return {"answer": inputs["answer"]}
