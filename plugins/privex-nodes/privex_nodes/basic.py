"""The built-in node types. Each only uses ``ctx`` (never ``privex.services``) so it runs anywhere the engine does."""

from __future__ import annotations

import json

_STR = {"type": "string", "maxLength": 20000}


def text_of(value) -> str:
    """A resolved setting as text: a one-expression template can resolve to a list, a number or None."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value).lower() if isinstance(value, bool) else str(value)


class StartNode:
    """Where every run begins: its ``text`` output is the visitor's message."""
    name, version, role = "start", "1", "start"
    config_schema = {"type": "object", "additionalProperties": False, "properties": {}}
    inputs, outputs = (), ("out",)

    def run(self, ctx, inputs):
        return {"text": inputs.get("input")}


class ResponseNode:
    """The flow's answer: ``text`` (a template) and optionally the citations of a knowledge base node.

    ``stream_from: <node id>`` names the node just before this one (an llm node) whose text the engine streams to
    the visitor as it is written; ``text`` (usually empty then) follows it."""
    name, version, role = "response", "1", "response"
    config_schema = {"type": "object", "required": ["text"], "additionalProperties": False,
                     "properties": {"text": _STR, "citations_from": {"type": "string"},
                                    "stream_from": {"type": "string", "minLength": 1}}}
    inputs, outputs = ("in",), ()

    def run(self, ctx, inputs):
        out = {"text": text_of(inputs["config"]["text"])}
        source = inputs["config"].get("citations_from")
        if source:
            out["citations"] = (ctx.variables.get(source) or {}).get("citations", [])
        return out


def _number(value):
    """The value as a number when it is one or reads as one ("3", " 2.5 "), else None (booleans are not numbers)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return float(value.strip()) if value.strip() else None
        except ValueError:
            return None
    return None


def _boolean(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _structure(value):
    """A list or object, also from its JSON text; None for anything else."""
    if isinstance(value, (list, dict)):
        return value
    if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
        try:
            parsed = json.loads(value)
        except ValueError:
            return None
        return parsed if isinstance(parsed, (list, dict)) else None
    return None


def _equal(left, right) -> bool:
    """Typed equality: numbers by value, booleans by truth, lists and objects by content, else the text."""
    a, b = _number(left), _number(right)
    if a is not None and b is not None:
        return a == b
    a, b = _boolean(left), _boolean(right)
    if a is not None and b is not None:
        return a == b
    if isinstance(left, (list, dict)) or isinstance(right, (list, dict)):
        return _structure(left) == _structure(right) and _structure(left) is not None
    return text_of(left) == text_of(right)


def _order(op, left, right) -> bool:
    a, b = _number(left), _number(right)
    if a is None or b is None:
        if isinstance(left, str) and isinstance(right, str):
            a, b = left, right                          # two texts (ISO dates, names) compare as text
        else:
            raise ValueError(f"Cannot compare {left!r} {op} {right!r}: not two numbers or two texts.")
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


def _is_empty(value) -> bool:
    return value is None or value in ([], {}) or (isinstance(value, str) and value.strip() == "")


def _compare(op, left, right):
    if op == "is_empty":
        return _is_empty(left)
    if op == "is_not_empty":
        return not _is_empty(left)
    if op in ("<", "<=", ">", ">="):
        return _order(op, left, right)
    if op == "==":
        return _equal(left, right)
    if op == "!=":
        return not _equal(left, right)
    if op == "contains":
        if isinstance(left, list):
            return any(_equal(x, right) for x in left)
        if isinstance(left, dict):
            return text_of(right) in left
        return text_of(right).lower() in text_of(left).lower()
    if op == "starts_with":
        return text_of(left).lower().startswith(text_of(right).lower())
    if op == "ends_with":
        return text_of(left).lower().endswith(text_of(right).lower())
    raise ValueError(f"Unknown comparison {op!r}")


def _to_int(value):
    number = _number(value)
    if number is None or number != int(number):
        raise ValueError(f"{value!r} is not a whole number")
    return int(number)


def _to_float(value):
    number = _number(value)
    if number is None:
        raise ValueError(f"{value!r} is not a number")
    return float(number)


def _to_bool(value):
    if isinstance(value, bool):
        return value
    if value is None or isinstance(value, (int, float, list, dict)):
        return bool(value)
    word = str(value).strip().lower()
    if word in ("true", "yes", "on", "1"):
        return True
    if word in ("false", "no", "off", "0", ""):
        return False
    raise ValueError(f"{value!r} is not true or false")


def _to_list(value):
    """A list: itself, a JSON list, or comma-separated text (each part stripped, empty parts dropped)."""
    if isinstance(value, list):
        return value
    if value is None:
        return []
    text = text_of(value).strip()
    if text.startswith("["):
        parsed = json.loads(text)
        if isinstance(parsed, list):
            return parsed
    return [part.strip() for part in text.split(",") if part.strip()]


def _from_json(value):
    return json.loads(value) if isinstance(value, str) else value


class VariableNode:
    """Set named values (templates), optionally transformed: ``upper``, ``lower``, ``strip``, ``json``, ``int``,
    ``float``, ``bool`` (true/yes/on/1, false/no/off/0/empty) or ``list`` (a JSON list or comma-separated text)."""
    name, version = "variable", "1"
    config_schema = {"type": "object", "required": ["values"], "additionalProperties": False, "properties": {
        "values": {"type": "object", "additionalProperties": _STR},
        "transform": {"enum": ["none", "upper", "lower", "strip", "json", "int", "float", "bool", "list"]}}}
    inputs, outputs = ("in",), ("out",)
    _TRANSFORMS = {"none": lambda v: v, "upper": lambda v: text_of(v).upper(), "lower": lambda v: text_of(v).lower(),
                   "strip": lambda v: text_of(v).strip(), "json": _from_json, "int": _to_int, "float": _to_float,
                   "bool": _to_bool, "list": _to_list}

    def run(self, ctx, inputs):
        name = inputs["config"].get("transform", "none")
        fn, out = self._TRANSFORMS[name], {}
        for key, value in inputs["config"]["values"].items():
            try:
                out[key] = fn(value)
            except ValueError as exc:                   # JSONDecodeError is a ValueError too
                raise ValueError(f"{key}: cannot transform to {name}: {exc}") from None
        return out


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
        """``items`` resolves to a list (``"{{ kb.citations }}"``), a JSON list, or lines of text."""
        raw = inputs["config"]["items"]
        if isinstance(raw, list):
            return {"items": raw}
        raw = text_of(raw)
        items = json.loads(raw) if raw.strip().startswith("[") else [x for x in raw.split("\n") if x.strip()]
        if not isinstance(items, list):
            raise ValueError("items is not a list")
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
            ctx.memory_set(text_of(c["key"]), c.get("value", ""))
            return {"value": c.get("value", "")}
        return {"value": ctx.memory_get(text_of(c["key"]), c.get("default", ""))}


class LlmNode:
    """Ask the language model; streams its answer when a response node says ``stream_from`` this node."""
    name, version = "llm", "1"
    config_schema = {"type": "object", "required": ["prompt"], "additionalProperties": False, "properties": {
        "prompt": _STR, "system": _STR, "provider": {"type": "object"}}}
    inputs, outputs = ("in",), ("out",)

    @staticmethod
    def _messages(c):
        return ([{"role": "system", "content": text_of(c["system"])}] if c.get("system") else []) + \
            [{"role": "user", "content": text_of(c["prompt"])}]

    def run(self, ctx, inputs):
        c = inputs["config"]
        return {"text": ctx.llm(self._messages(c), c.get("provider"))}

    def stream(self, ctx, inputs):
        c = inputs["config"]
        yield from ctx.llm_stream(self._messages(c), c.get("provider"))


class KnowledgeBaseNode:
    """Search one or more knowledge bases: outputs the best passages as ``text`` and as ``citations``."""
    name, version = "knowledge_base", "1"
    config_schema = {"type": "object", "required": ["knowledge_bases", "query"], "additionalProperties": False,
                     "properties": {"knowledge_bases": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                                    "query": _STR, "mode": {"enum": ["semantic", "keyword", "hybrid"]},
                                    "top_k": {"type": "integer", "minimum": 1, "maximum": 20}}}
    inputs, outputs = ("in",), ("out",)

    def run(self, ctx, inputs):
        c = inputs["config"]
        chunks = ctx.retrieve([text_of(kb) for kb in c["knowledge_bases"]], text_of(c["query"]),
                              c.get("mode", "hybrid"), c.get("top_k", 4))
        return {"citations": chunks, "text": "\n\n".join(str(ch.get("text", "")) for ch in chunks)}


class HumanInputNode:
    """Ask the visitor a question; the flow pauses until ``resume`` brings the answer.

    ``pauses`` tells validation this node cannot sit in a parallel loop's body."""
    name, version, pauses = "human_input", "1", True
    config_schema = {"type": "object", "required": ["question"], "additionalProperties": False,
                     "properties": {"question": _STR}}
    inputs, outputs = ("in",), ("out",)

    def run(self, ctx, inputs):
        if "answer" not in inputs:
            return {"_pause": text_of(inputs["config"]["question"])}
        return {"answer": inputs["answer"]}
