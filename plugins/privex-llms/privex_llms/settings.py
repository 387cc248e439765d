"""The settings of this distribution's models and providers: each one's ``config_schema`` is a JSON Schema object
whose properties are made with :func:`setting`, and :func:`checked` holds a configuration against it.

Shared by the embedding models and the LLM providers, so both refuse a bad setting the same way: a ValueError that
names the setting, the value and what was wanted.
"""

from __future__ import annotations

import re
from typing import Any


def setting(kind: str | list[str], default: Any, description: str, **schema: Any) -> dict[str, Any]:
    """One property of a ``config_schema``: a JSON Schema type (or list of types), its default and what it does."""
    return {"type": kind, "default": default, "description": description, **schema}


def schema_of(properties: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The ``config_schema`` made of ``properties``: an object that takes nothing else."""
    return {"type": "object", "properties": properties, "additionalProperties": False}


def checked(owner: str, properties: dict[str, dict[str, Any]], config: dict[str, Any]) -> dict[str, Any]:
    """``config`` checked against ``properties``, with the defaults of the settings it leaves out.

    ``owner`` says whose settings they are in messages (``"LLM provider 'ollama'"``). An unknown setting or a bad
    value raises ValueError naming it.
    """
    unknown = sorted(set(config) - set(properties))
    if unknown:
        raise ValueError(f"{owner} has no setting {', '.join(map(repr, unknown))} "
                         f"(settings: {', '.join(properties) or 'none'})")
    for key, value in config.items():
        check(owner, key, value, properties[key])
    return {key: prop.get("default") for key, prop in properties.items()} | config


_TYPES = {"string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,), "null": (type(None),)}


def check(owner: str, key: str, value: Any, prop: dict[str, Any]) -> None:
    """Raise ValueError naming ``key`` when ``value`` is not of the property's type or out of its bounds."""
    kinds = prop["type"] if isinstance(prop["type"], list) else [prop["type"]]
    fits = any(isinstance(value, _TYPES[kind]) and not (isinstance(value, bool) and kind in ("integer", "number"))
               for kind in kinds)
    if not fits:
        wanted = " or ".join("a whole number" if kind == "integer" else "a number" if kind == "number"
                             else "empty" if kind == "null" else f"a {kind}" for kind in kinds)
        raise ValueError(f"{owner}: {key} must be {wanted}, got {value!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "exclusiveMinimum" in prop and not value > prop["exclusiveMinimum"]:
            raise ValueError(f"{owner}: {key} must be more than {prop['exclusiveMinimum']}, got {value!r}")
        if "minimum" in prop and not value >= prop["minimum"]:
            raise ValueError(f"{owner}: {key} must be at least {prop['minimum']}, got {value!r}")
        if "maximum" in prop and not value <= prop["maximum"]:
            raise ValueError(f"{owner}: {key} must be at most {prop['maximum']}, got {value!r}")
    if isinstance(value, str) and prop.get("minLength") and len(value.strip()) < prop["minLength"]:
        raise ValueError(f"{owner}: {key} must not be empty")
    if isinstance(value, str) and "pattern" in prop and not re.search(prop["pattern"], value):
        wanted = prop.get("patternDescription") or f"match {prop['pattern']}"
        raise ValueError(f"{owner}: {key} must {wanted}, got {value!r}")
