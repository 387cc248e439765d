"""The code node: the user's Python ``main(**inputs)`` run in the core's sandbox (``ctx.run_code``), its dict as
outputs. The node never runs code itself; where the server cannot contain code, ``ctx.run_code`` refuses."""

from __future__ import annotations

import json

_NAME = {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]{0,63}$"}


class CodeNode:
    """``code`` defines ``def main(**inputs)`` returning a dict; ``inputs`` maps names to values (strings are
    templates); names listed in ``json_inputs`` are parsed as JSON after rendering (``{{ node.rows | tojson }}``).
    The code itself holds no template syntax (``{{``, ``{%``, ``{#``): values come in through ``inputs`` only."""
    name, version = "code", "1"
    config_schema = {"type": "object", "required": ["code"], "additionalProperties": False, "properties": {
        # Every config string is a template; the code must not be one, or a visitor's message would become code.
        "code": {"type": "string", "minLength": 1, "maxLength": 100000, "not": {"pattern": "\\{[{%#]"}},
        "inputs": {"type": "object", "maxProperties": 50, "propertyNames": _NAME},
        "json_inputs": {"type": "array", "items": _NAME, "maxItems": 50}}}
    inputs, outputs = ("in",), ("out",)

    def run(self, ctx, inputs):
        config = inputs["config"]
        values = dict(config.get("inputs") or {})
        for name in config.get("json_inputs") or ():
            if isinstance(values.get(name), str):
                try:
                    values[name] = json.loads(values[name])
                except ValueError as error:
                    raise ValueError(f"the input {name!r} is not JSON: {error}") from None
        result = ctx.run_code(config["code"], values)
        # "_port" and "_pause" steer the engine; the user's code does not get to.
        return {key: value for key, value in result.items() if not str(key).startswith("_")}
