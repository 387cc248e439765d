"""The parameter extractor node: named, typed values pulled out of a text (usually the visitor's message) by an LLM
asked for one JSON object, each value converted to its declared type.

A parameter the LLM did not give (the offline ``extractive`` provider gives no JSON at all) is looked for in the text
by deterministic rules: ``name: value`` / ``name is value`` / ``name = value`` for any type (the parameter's name or
its words, e.g. ``order_id`` as "order id"); an e-mail address for a parameter whose name or description says email;
for a number, the number just before or after the parameter's words ("3 tickets"), else the numbers in the text in
order, one per number parameter still missing; for a boolean, yes/no/true/false, or the parameter's words with or
without a negation before them ("no breakfast"). Outputs every parameter (null when not found), ``missing`` (the
required ones not found) and ``method`` (``llm``, ``rules`` or ``llm+rules``).
"""

from __future__ import annotations

import itertools
import json
import re

# Each starts only where a number or an address can start (the look-behinds): otherwise a long run of digits or letters
# would be rescanned from every position inside it, quadratic in a visitor's text.
NUMBER = r"(?<![\d.,-])-?\d+(?:[.,]\d+)?"
EMAIL = r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
MAX_TEXT = 20_000  # the rules read this much of the text
MAX_TRIES = 20  # places in the LLM's answer where a JSON object may start
_PARAM = {"type": "object", "required": ["name", "type"], "additionalProperties": False, "properties": {
    "name": {"type": "string", "pattern": "^(?!missing$|method$)[A-Za-z_][A-Za-z0-9_]{0,63}$"},
    "type": {"enum": ["string", "number", "boolean", "list"]},
    "description": {"type": "string", "maxLength": 2000},
    "required": {"type": "boolean"}}}


def json_object(answer: str) -> dict | None:
    """The first JSON object in the answer (bare, or in a ``` fence, or after some words), or None."""
    decoder = json.JSONDecoder()
    answer = str(answer)
    for match in itertools.islice(re.finditer(r"\{", answer), MAX_TRIES):
        try:
            value, _ = decoder.raw_decode(answer, match.start())
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _number(value):
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, (int, float)):
        return value
    text = str(value).strip().replace(",", ".") if re.fullmatch(r"-?\d+,\d+", str(value).strip()) else \
        str(value).strip().replace(",", "")
    number = float(text)
    return int(number) if number.is_integer() and not re.search(r"[.eE]", text) else number


def _boolean(value):
    if isinstance(value, bool):
        return value
    said = str(value).strip().lower()
    if said in ("true", "yes", "y", "1", "on"):
        return True
    if said in ("false", "no", "n", "0", "off"):
        return False
    raise ValueError


def convert(value, kind: str):
    """``value`` as ``kind``; raises ValueError when it is not one."""
    if value is None or value == "":
        raise ValueError
    if kind == "number":
        return _number(value)
    if kind == "boolean":
        return _boolean(value)
    if kind == "list":
        if isinstance(value, list):
            return value
        return [part.strip() for part in re.split(r",|;|\band\b", str(value)) if part.strip()]
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value).strip()


def _words(param: dict) -> str:
    """The parameter's name as a regular expression over words: ``order_id`` matches "order id" and "order-id"."""
    parts = [p for p in re.split(r"[_\W]+", param["name"].lower()) if p]
    return r"[\s_-]*".join(re.escape(p) for p in parts)


def _by_rule(param: dict, text: str, used_numbers: list):
    words, kind = _words(param), param["type"]
    labelled = re.search(rf"\b{words}\b\s*(?:is|are|was|:|=|of)\s*([^\n.;!?]+)", text, re.I)
    if labelled:
        raw = labelled.group(1).strip()
        if kind == "number":
            raw = (re.match(NUMBER, raw) or [None])[0]
        elif kind == "boolean":
            raw = raw.split()[0] if raw.split() else raw
        elif kind == "string":
            raw = re.split(r",|\s+(?:and|but)\s+", raw)[0].strip()
        try:
            return convert(raw, kind)
        except ValueError:
            pass
    about = f"{param['name']} {param.get('description', '')}".lower()
    if kind in ("string", "list") and "email" in about.replace("-", ""):
        found = re.findall(EMAIL, text)
        if found:
            return found if kind == "list" else found[0]
    if kind == "number":
        near = re.search(rf"({NUMBER})\s*\b{words}", text, re.I) or re.search(rf"\b{words}\W{{0,3}}({NUMBER})",
                                                                             text, re.I)
        if near:
            used_numbers.append(near.group(1))
            return convert(near.group(1), "number")
    if kind == "boolean":
        mention = re.search(rf"(\b(?:no|not|without|don't|dont|never)\s+(?:\w+\s+)?)?\b{words}\b", text, re.I)
        if mention:
            return mention.group(1) is None
    return None


class ParameterExtractorNode:
    """Pull named values (text, numbers, yes/no, lists) out of a message with the model, or with plain rules when
    the model gives none; lists what is ``missing``."""
    name, version = "parameter_extractor", "1"
    config_schema = {"type": "object", "required": ["parameters"], "additionalProperties": False, "properties": {
        "text": {"type": "string", "maxLength": 20000},
        "parameters": {"type": "array", "minItems": 1, "maxItems": 30, "items": _PARAM},
        "instruction": {"type": "string", "maxLength": 4000},
        "provider": {"type": "object"}}}
    inputs, outputs = ("in",), ("out",)

    def run(self, ctx, inputs):
        c = inputs["config"]
        text = str(c.get("text") or inputs.get("input") or "")
        params = c["parameters"]
        listing = "\n".join(f"- {p['name']} ({p['type']}{', required' if p.get('required') else ''})"
                            + (f": {p['description']}" if p.get("description") else "") for p in params)
        system = ("Extract these parameters from the user's text. Answer with one JSON object only, whose keys are "
                  "the parameter names; use null for a value the text does not give.\n" + listing
                  + (f"\n{c['instruction']}" if c.get("instruction") else ""))
        answer = ctx.llm([{"role": "system", "content": system}, {"role": "user", "content": text}],
                         c.get("provider"))
        given = json_object(answer) or {}
        text = text[:MAX_TEXT]
        values, used = {}, set()
        for p in params:
            try:
                values[p["name"]] = convert(given.get(p["name"]), p["type"])
                used.add("llm")
            except (ValueError, TypeError):
                values[p["name"]] = None
        used_numbers = [str(v) for v in values.values() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        for p in params:
            if values[p["name"]] is None:
                values[p["name"]] = _by_rule(p, text, used_numbers)
                if values[p["name"]] is not None:
                    used.add("rules")
        # Numbers nothing labelled go, in order, to the number parameters still missing.
        numbers = re.findall(NUMBER, re.sub(EMAIL, " ", text))
        for taken in used_numbers:
            if taken in numbers:
                numbers.remove(taken)
        for p in params:
            if values[p["name"]] is None and p["type"] == "number" and numbers:
                values[p["name"]] = convert(numbers.pop(0), "number")
                used.add("rules")
        missing = [p["name"] for p in params if p.get("required") and values[p["name"]] is None]
        method = "+".join(m for m in ("llm", "rules") if m in used) or "none"
        return {**values, "missing": missing, "method": method}
