"""A node type's JSON Schema as the fields of its settings form, its starting settings, and the palette's groups.

Only the top level of a schema becomes separate fields; anything nested is edited as JSON, which the browser parses
and refuses beside its field before it reaches the graph. Which field a kind of schema becomes:

- ``enum`` -> a select (option values are the JSON of each choice, so a number stays a number);
- ``string`` -> a one-line input, or a text area when it may be long (``maxLength`` over 200: prompts, templates);
- ``integer`` / ``number`` -> a number input (``minimum``/``maximum`` carried over);
- ``boolean`` -> a checkbox;
- an ``array`` of plain strings -> a text area, one item per line; but a list of knowledge bases (a setting named
  ``knowledge_bases`` or ``knowledge_base_ids``: no schema keyword says "an id of this workspace's knowledge
  bases") -> a checkbox per knowledge base of the workspace, so nobody has to copy ids; likewise a text setting
  named ``credential_id`` -> a select of the workspace's credentials;
- any other ``object`` / ``array`` -> a JSON text area.

The validator's messages (``cases/0/op: 'x' is not one of ...``, ``'query' is a required property``) are put beside
the field they name; the rest stay at the top of the form.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from markupsafe import Markup, escape

LONG_TEXT = 200

# Control flow first, then the steps, then the ends; a type says where it belongs with its ports and its role.
GROUPS = ("Start and answer", "Branches and loops", "Steps")


@dataclass
class ConfigField:
    """One field of a node's settings form."""

    name: str
    label: str
    kind: str                    # text, textarea, select, integer, number, checkbox, lines, checks, json
    value: object = None         # what the field shows (text for text fields, a bool for a checkbox)
    required: bool = False
    hint: str | None = None
    options: list = field(default_factory=list)   # (json value, label) for a select; (id, name) for checks
    empty_choice: str | None = None                 # a select's first, empty option
    minimum: float | None = None
    maximum: float | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return "cfg-" + re.sub(r"[^A-Za-z0-9_-]", "-", self.name)


def label_of(name: str, schema: dict) -> str:
    title = schema.get("title") if isinstance(schema.get("title"), str) else None
    return title or (name.replace("_", " ").strip().capitalize() or name)


def kind_of(schema: dict) -> str:
    if "enum" in schema:
        return "select"
    kind = schema.get("type")
    if kind == "string":
        return "textarea" if int(schema.get("maxLength") or 0) > LONG_TEXT else "text"
    if kind in ("integer", "number", "boolean"):
        return "checkbox" if kind == "boolean" else kind
    if kind == "array" and (schema.get("items") or {}).get("type") == "string" and \
            "enum" not in (schema.get("items") or {}):
        return "lines"
    return "json"


def shown(kind: str, value):
    """What a field of ``kind`` shows for the setting ``value``."""
    if kind == "checkbox":
        return bool(value)
    if value is None:
        return ""
    if kind == "lines":
        return "\n".join(str(item) for item in value) if isinstance(value, list) else json.dumps(value)
    if kind == "json":
        return json.dumps(value, indent=2, ensure_ascii=False)
    if kind == "select":
        return json.dumps(value)
    return str(value) if kind != "textarea" and not isinstance(value, str) else value


KNOWLEDGE_LISTS = ("knowledge_bases", "knowledge_base_ids")
CREDENTIAL = "credential_id"


def config_fields(schema: dict, config: dict, messages: list[str] | None = None,
                  knowledge: list[tuple[str, str]] | None = None,
                  credentials: list[tuple[str, str]] | None = None) -> tuple[list[ConfigField], list]:
    """The fields of a settings form for ``config`` under ``schema``, and the messages no field took;
    ``knowledge``: the workspace's knowledge bases as (id, name), offered as checkboxes where a setting lists them;
    ``credentials``: its credentials as (id, label), offered in a select for a ``credential_id``."""
    schema = schema if isinstance(schema, dict) else {}
    config = config if isinstance(config, dict) else {}
    required = set(schema.get("required") or ())
    fields = []
    for name, prop in (schema.get("properties") or {}).items():
        prop = prop if isinstance(prop, dict) else {}
        kind = kind_of(prop)
        item = ConfigField(name=name, label=label_of(name, prop), kind=kind, value=shown(kind, config.get(name)),
                           required=name in required, hint=hint_of(prop, kind))
        if kind == "select":
            item.options = [(json.dumps(choice), str(choice)) for choice in prop["enum"]]
        if kind in ("integer", "number"):
            item.minimum, item.maximum = prop.get("minimum"), prop.get("maximum")
        if kind == "lines" and name in KNOWLEDGE_LISTS and knowledge:
            chosen = [str(v) for v in config.get(name) or []] if isinstance(config.get(name), list) else []
            known = {kb_id for kb_id, _ in knowledge}
            item.kind, item.value = "checks", chosen
            item.options = list(knowledge) + [(kb_id, f"{kb_id} (not in this workspace)") for kb_id in chosen
                                              if kb_id not in known]
            item.hint = hint_of(prop, "checks")
        elif kind == "text" and name == CREDENTIAL and credentials:
            current = config.get(name)
            item.kind, item.value, item.empty_choice = "select", json.dumps(current) if current else "", \
                "Choose a credential"
            item.options = [(json.dumps(cred_id), label) for cred_id, label in credentials]
            if current and current not in {cred_id for cred_id, _ in credentials}:
                item.options.append((json.dumps(current), f"{current} (not in this workspace)"))
        elif kind == "lines" and name in KNOWLEDGE_LISTS:
            item.hint = " ".join(filter(None, (item.hint, "This workspace has no knowledge base yet: add your "
                                                          "documents in Knowledge, then choose them here.")))
        fields.append(item)
    rest = []
    by_name = {item.name: item for item in fields}
    for message in messages or ():
        target, text = placed(str(message), by_name)
        (target.errors if target else rest).append(text)
    return fields, rest


def hint_of(schema: dict, kind: str) -> str | None:
    said = schema.get("description") if isinstance(schema.get("description"), str) else None
    extra = {"lines": "One per line.", "json": "JSON."}.get(kind)
    return " ".join(part for part in (said, extra) if part) or None


def placed(message: str, by_name: dict) -> tuple[ConfigField | None, str]:
    """The field a validation message concerns (by its path, or the property it says is required), and the text to
    show beside it."""
    path, _, text = message.partition(": ")
    if text and path.split("/")[0] in by_name:
        rest = "/".join(path.split("/")[1:])
        return by_name[path.split("/")[0]], f"{rest}: {text}" if rest else text
    required = re.match(r"^'([^']+)' is a required property$", message)
    if required and required.group(1) in by_name:
        return by_name[required.group(1)], "Required."
    return None, message


def starter_config(schema: dict) -> dict:
    """Settings a new node starts with: each required setting's default, first choice or empty value. The result
    may still be refused (a list that needs an item): the canvas shows what to fill in."""
    config = {}
    for name in (schema or {}).get("required") or ():
        prop = ((schema.get("properties") or {}).get(name)) or {}
        if "default" in prop:
            config[name] = prop["default"]
        elif prop.get("enum"):
            config[name] = prop["enum"][0]
        else:
            config[name] = {"string": "", "integer": prop.get("minimum", 0), "number": prop.get("minimum", 0),
                            "boolean": False, "array": [], "object": {}}.get(prop.get("type"), "")
    return config


def group_of(entry: dict) -> str:
    if entry.get("role") in ("start", "response"):
        return GROUPS[0]
    if entry.get("role") == "loop" or len(entry.get("outputs") or ()) > 1:
        return GROUPS[1]
    return GROUPS[2]


def palette(catalogue: list[dict]) -> list[tuple[str, list[dict]]]:
    """The node types by group (a type's own ``category`` when it gives one), each group by name."""
    groups: dict[str, list[dict]] = {}
    for entry in catalogue:
        groups.setdefault(entry.get("category") or group_of(entry), []).append(entry)
    order = {name: index for index, name in enumerate(GROUPS)}
    return [(name, sorted(entries, key=lambda e: e["type"]))
            for name, entries in sorted(groups.items(), key=lambda item: (order.get(item[0], len(GROUPS)), item[0]))]


def type_label(name: str) -> str:
    """A type's name as a label: ``knowledge_base`` -> "Knowledge base"; a word without vowels is an abbreviation
    (``llm`` -> "LLM", ``http_request`` -> "HTTP request")."""
    words = [word.upper() if word and not set(word.lower()) & set("aeiouy") else word
             for word in name.replace("_", " ").split()]
    text = " ".join(words)
    return (text[0].upper() + text[1:]) if text else name


def code_spans(text) -> Markup:
    """A node type's description (its docstring's first paragraph) with its ``double backticks`` as code."""
    parts = str(text or "").split("``")
    return Markup("").join(Markup("<code>{}</code>").format(part) if index % 2 else escape(part)
                           for index, part in enumerate(parts))
