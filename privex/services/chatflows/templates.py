"""Resolve ``{{input}}``, ``{{node_id.output}}``, ``{{session.name}}``, ``{{env.NAME}}`` in node settings.

Jinja2's sandbox, never eval: a template cannot reach Python attributes; a missing variable is an error naming it.
"""

from __future__ import annotations

from jinja2 import StrictUndefined, TemplateError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment

MAX_RESULT = 100_000
_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


class TemplateFailed(Exception):
    """A template could not be resolved; the message names the variable."""


def render(text: str, variables: dict) -> str:
    if "{{" not in text and "{%" not in text:
        return text
    try:
        out = _env.from_string(text).render(**variables)
    except UndefinedError as exc:
        raise TemplateFailed(f"Unknown variable in {text!r}: {exc.message}") from None
    except TemplateError as exc:
        raise TemplateFailed(f"Bad template {text!r}: {exc}") from None
    if len(out) > MAX_RESULT:
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
