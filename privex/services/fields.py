"""Checks of the plain fields every kind of thing has (a name, a description), the same in every service, so a
name refused by the API is refused with the same words by the pages and the back office.

Each function adds its message to ``errors`` (field -> list of messages) when the field is in ``values`` and wrong;
the caller raises ``Invalid`` once with all of them.
"""

from __future__ import annotations


def check_name(values: dict, errors: dict, *, field: str = "name", limit: int = 120) -> None:
    if field in values:
        name = values[field]
        if not isinstance(name, str) or not name.strip() or len(name) > limit:
            errors[field] = [f"give a name of 1 to {limit} characters"]


def check_text(values: dict, errors: dict, field: str, *, limit: int = 2000) -> None:
    """An optional text (None allowed) of at most ``limit`` characters."""
    value = values.get(field)
    if value is not None and (not isinstance(value, str) or len(value) > limit):
        errors[field] = [f"at most {limit} characters"]
