"""Resolve ``{{input}}``, ``{{node_id.output}}``, ``{{session.name}}``, ``{{env.NAME}}`` in node settings.

Jinja2's sandbox, never eval: a template cannot reach Python attributes; a missing variable is an error naming it.
A setting that is exactly one expression (``"{{ kb.citations }}"``, spaces around it allowed) resolves to the value
itself — a list stays a list, a number a number — so one node's list output can feed a loop's items or a typed
comparison; any other template renders to text.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Mapping

from jinja2 import StrictUndefined, TemplateError, Undefined, UndefinedError
from jinja2.sandbox import SandboxedEnvironment

MAX_RESULT = 100_000


class _FlowEnvironment(SandboxedEnvironment):
    """``{{ node.name }}`` reads the node's output ``name`` first: Jinja would give a dict's method of that name
    (``items``, ``keys``, ``values``, ``get``, ``update`` ...) before the key, so an output called ``items`` rendered
    as ``<built-in method items ...>``."""

    def getattr(self, obj, attribute):
        if isinstance(obj, Mapping):
            try:
                return obj[attribute]
            except (KeyError, TypeError):
                pass
        return super().getattr(obj, attribute)


_env = _FlowEnvironment(undefined=StrictUndefined, autoescape=False)
_ONE_EXPRESSION = re.compile(r"\s*\{\{(.*)\}\}\s*", re.S)


class TemplateFailed(Exception):
    """A template could not be resolved; the message names the variable."""


# Compiling is most of a render's cost and a flow's templates repeat on every run: keep the compiled ones.
@functools.lru_cache(maxsize=2048)
def _template(text: str):
    return _env.from_string(text)


@functools.lru_cache(maxsize=2048)
def _expression(source: str):
    return _env.compile_expression(source, undefined_to_none=False)


def _single_expression(text: str) -> str | None:
    match = _ONE_EXPRESSION.fullmatch(text)
    if match is None:
        return None
    inner = match.group(1)
    return None if "{{" in inner or "}}" in inner or "{%" in text or "{#" in text else inner


def _plain(value):
    """The value as JSON-like data: Jinja's lazy sequences (``map``, ``select``) become lists."""
    if value is None or isinstance(value, (bool, int, float, dict, list)):
        return value
    if isinstance(value, str):
        return str(value)                               # Markup and other str subclasses become plain text
    if isinstance(value, (tuple, range, Iterator)):
        return list(value)
    return str(value)


def _too_big(value) -> bool:
    if isinstance(value, str):
        return len(value) > MAX_RESULT
    return isinstance(value, (list, dict)) and len(json.dumps(value, default=str)) > MAX_RESULT


def render(text: str, variables: dict):
    """The text with its variables resolved: a str, or the value itself for a one-expression template."""
    if "{{" not in text and "{%" not in text:
        return text
    try:
        source = _single_expression(text)
        if source is not None:
            out = _expression(source)(**variables)
            if isinstance(out, Undefined):
                raise TemplateFailed(f"Unknown variable in {text!r}: {out._undefined_message}")
            out = _plain(out)
        else:
            out = _template(text).render(**variables)
    except UndefinedError as exc:
        raise TemplateFailed(f"Unknown variable in {text!r}: {exc.message}") from None
    except TemplateError as exc:
        raise TemplateFailed(f"Bad template {text!r}: {exc}") from None
    if _too_big(out):
        raise TemplateFailed(f"The template {text!r} produced more than {MAX_RESULT} characters.")
    return out


def render_config(value, variables: dict):
    """Render every string in a settings object."""
    if isinstance(value, str):
        return render(value, variables)
    if isinstance(value, list):
        return [render_config(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: render_config(v, variables) for k, v in value.items()}
    return value
