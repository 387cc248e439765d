"""The database node: one parameterised, read-only query on an external PostgreSQL through ``ctx.sql``. The core
checks the statement, runs it in a READ ONLY transaction with a statement timeout, guards the host like any outbound
request, and reads the connection URL from the stored credential (provider ``postgres``, secret ``{"url": ...}``)."""

from __future__ import annotations

_PARAM = {"type": ["string", "number", "boolean", "null"]}


class DatabaseNode:
    """``query`` uses ``%s`` (with ``params`` a list) or ``%(name)s`` (with ``params`` an object). Parameter strings
    are templates; the query may hold none (its schema refuses ``{{``, ``{%`` and ``{#``), so a visitor's words reach
    the database only as parameters, never as SQL.
    Outputs ``rows`` (a list of objects), ``row_count``, ``columns`` and ``truncated`` (more than ``max_rows``)."""
    name, version = "database", "1"
    config_schema = {"type": "object", "required": ["credential_id", "query"], "additionalProperties": False,
                     "properties": {
                         "credential_id": {"type": "string"},
                         "query": {"type": "string", "minLength": 1, "maxLength": 20000,
                                   "not": {"pattern": "\\{[{%#]"}},
                         "params": {"oneOf": [{"type": "array", "items": _PARAM, "maxItems": 100},
                                              {"type": "object", "additionalProperties": _PARAM,
                                               "maxProperties": 100}]},
                         "max_rows": {"type": "integer", "minimum": 1, "maximum": 1000},
                         "timeout": {"type": "number", "minimum": 0.1, "maximum": 30}}}
    inputs, outputs = ("in",), ("out",)

    def run(self, ctx, inputs):
        c = inputs["config"]
        return ctx.sql(c["credential_id"], c["query"], c.get("params"), c.get("max_rows", 100),
                       c.get("timeout", 5))
