"""The metadata filter grammar of knowledge-base queries: what a caller may ask for, checked before a store sees it.

    filters   = {key: condition, ...}         every condition must hold; at most MAX_KEYS keys
    key       = letters, digits, ``_ . : -``, 1-64 characters, starting with a letter, digit or ``_``
    condition = scalar                        equal to it
              | [scalar, ...]                 equal to any of them (1-MAX_VALUES values)
              | {operator: operand, ...}      every operator holds
    operator  = "$eq" | "$ne"                 operand: a scalar
              | "$in" | "$nin"                operand: a list of 1-MAX_VALUES scalars
              | "$gt" | "$gte" | "$lt" | "$lte"   operand: a number
    scalar    = a string (at most MAX_STRING characters), a finite number or a boolean

Equality compares whole JSON values: ``"1"`` is not ``1``, ``true`` is not ``1``, ``1`` is ``1.0``; a chunk whose
value is a list does not equal one of its items. Range operators match only numeric values. ``$ne`` and ``$nin``
also match chunks that lack the key. ``document_id`` names the chunk's document (a UUID) and takes only equality
operators.

Only these operators: each is one the stores implement exactly (``privex_pgvector`` turns equality into JSONB
containment and ranges into numeric comparisons). ``$in`` is sent as "any of" equalities and ``$nin`` as "none of"
them, so a list may mix types, which LlamaIndex's own ``in`` filter cannot carry.
"""

from __future__ import annotations

import math
import re
import uuid

from llama_index.core.vector_stores.types import FilterCondition, FilterOperator, MetadataFilter, MetadataFilters

from privex.services.errors import Invalid

MAX_KEYS = 20
MAX_VALUES = 100
MAX_STRING = 500
KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,63}")
EQUALITY = ("$eq", "$ne", "$in", "$nin")
RANGE = ("$gt", "$gte", "$lt", "$lte")
OPERATORS = EQUALITY + RANGE
_RANGE_OPERATORS = {"$gt": FilterOperator.GT, "$gte": FilterOperator.GTE, "$lt": FilterOperator.LT,
                    "$lte": FilterOperator.LTE}
SCALARS = "a string, a number or a boolean"
GRAMMAR = ("a value (equal to it), a list of values (any of them) or an object of operators "
           f"({', '.join(OPERATORS)}); values are strings, numbers or booleans")


def parse_filters(filters: dict | None) -> MetadataFilters | None:
    """``filters`` as LlamaIndex metadata filters (all must hold), or ``Invalid`` naming each key that breaks the
    grammar and saying what is allowed."""
    if not filters:
        return None
    if not isinstance(filters, dict):
        raise Invalid("`filters` must be an object of metadata key -> condition.",
                      {"filters": [f"Must be an object mapping metadata keys to {GRAMMAR}."]})
    if len(filters) > MAX_KEYS:
        raise Invalid(f"`filters` has more than {MAX_KEYS} keys.",
                      {"filters": [f"At most {MAX_KEYS} keys."]})
    parsed, errors = [], {}
    for key, condition in filters.items():
        try:
            parsed.extend(_condition(key, condition))
        except ValueError as error:
            errors[key] = [str(error)]
    if errors:
        raise Invalid("Some metadata filters are not understood; see `errors`.", {"filters": errors})
    return MetadataFilters(filters=parsed, condition=FilterCondition.AND)


def _condition(key, condition) -> list[MetadataFilter | MetadataFilters]:
    if not isinstance(key, str) or not KEY.fullmatch(key):
        raise ValueError("A metadata key is 1-64 letters, digits, `_`, `.`, `:` or `-`, starting with a letter, a "
                         "digit or `_`.")
    if isinstance(condition, list):
        return [_any_of(key, condition, "the list")]
    if isinstance(condition, dict):
        if not condition:
            raise ValueError(f"An empty object: give one or more of {', '.join(OPERATORS)}.")
        return [_operator(key, operator, operand) for operator, operand in condition.items()]
    return [_filter(key, _scalar(key, condition, "the value"), FilterOperator.EQ)]


def _operator(key: str, operator, operand) -> MetadataFilter | MetadataFilters:
    if operator not in OPERATORS:
        raise ValueError(f"Unknown operator {operator!r}: use {', '.join(OPERATORS)}.")
    if operator in ("$eq", "$ne"):
        value = _scalar(key, operand, operator)
        return _filter(key, value, FilterOperator.EQ if operator == "$eq" else FilterOperator.NE)
    if operator == "$in":
        return _any_of(key, operand, "$in")
    if operator == "$nin":
        values = _scalars(key, operand, "$nin")
        return MetadataFilters(filters=[_filter(key, value, FilterOperator.NE) for value in values],
                               condition=FilterCondition.AND)
    if key == "document_id":
        raise ValueError(f"`document_id` takes only {', '.join(EQUALITY)}.")
    if isinstance(operand, bool) or not isinstance(operand, (int, float)) or not math.isfinite(operand):
        raise ValueError(f"{operator} compares numbers: give a number, not {_kind(operand)}.")
    return _filter(key, operand, _RANGE_OPERATORS[operator])


def _any_of(key: str, operand, where: str) -> MetadataFilters:
    values = _scalars(key, operand, where)
    return MetadataFilters(filters=[_filter(key, value, FilterOperator.EQ) for value in values],
                           condition=FilterCondition.OR)


def _scalars(key: str, operand, where: str) -> list:
    if not isinstance(operand, list) or not 1 <= len(operand) <= MAX_VALUES:
        if where == "the list":
            raise ValueError(f"Give a list of 1 to {MAX_VALUES} values ({SCALARS}).")
        raise ValueError(f"{where} takes a list of 1 to {MAX_VALUES} values ({SCALARS}).")
    return [_scalar(key, value, f"each value of {where}") for value in operand]


def _scalar(key: str, value, where: str):
    if isinstance(value, str):
        if len(value) > MAX_STRING:
            raise ValueError(f"{_sentence(where)} is longer than {MAX_STRING} characters.")
        if key == "document_id":
            try:
                return str(uuid.UUID(value))
            except ValueError:
                raise ValueError(f"{_sentence(where)} must be a document id (a UUID).") from None
        return value
    if key == "document_id":
        raise ValueError(f"{_sentence(where)} must be a document id (a UUID).")
    if isinstance(value, bool) or (isinstance(value, (int, float)) and math.isfinite(value)):
        return value
    raise ValueError(f"{_sentence(where)} must be {SCALARS}, not {_kind(value)}.")


def _sentence(words: str) -> str:
    return words[:1].upper() + words[1:]


def _filter(key: str, value, operator: FilterOperator) -> MetadataFilter:
    # Checked above; LlamaIndex's model has no boolean values (its strict ints refuse True), so it is not asked again.
    return MetadataFilter.model_construct(key=key, value=value, operator=operator)


def _kind(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return {str: "a string", list: "a list", dict: "an object"}.get(type(value), type(value).__name__)
