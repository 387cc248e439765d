"""Turning a model plus computed values into what a response schema dumps."""

from __future__ import annotations


def fields_of(obj, schema_class, **extra) -> dict:
    """The raw attribute values ``schema_class`` will dump, plus ``extra`` (values the model does not have).

    Raw values, not an already-dumped dict: the view's response schema serializes them exactly once."""
    values = {name: getattr(obj, name) for name in schema_class._declared_fields if hasattr(obj, name)}
    values.update(extra)
    return values
