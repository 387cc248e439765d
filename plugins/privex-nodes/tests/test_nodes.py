"""Every built-in node type, through the real registry: declared attributes, a valid schema, and a run."""

from __future__ import annotations

import jsonschema
import pytest

from privex.plugins import load_plugins
from privex.services.chatflows.context import NodeContext

REGISTRY = load_plugins(allow=["nodes"]).node_types

RUNS = {
    "start": ({}, {"text": "hi"}),
    "response": ({"text": "hello"}, {"text": "hello"}),
    "variable": ({"values": {"a": " X "}, "transform": "strip"}, {"a": "X"}),
    "condition": ({"cases": [{"left": "5", "op": "<", "right": "10", "port": "if"}]}, {"_port": "if", "matched": "if"}),
    "loop": ({"items": '["a", "b"]'}, {"items": ["a", "b"]}),
    "memory": ({"action": "set", "key": "k", "value": "v"}, {"value": "v"}),
    "llm": ({"prompt": "say hi"}, {"text": "echo: say hi"}),
    "knowledge_base": ({"knowledge_bases": ["kb"], "query": "q"},
                       {"citations": [{"text": "chunk about q"}], "text": "chunk about q"}),
    "human_input": ({"question": "Name?"}, {"_pause": "Name?"}),
    "code": ({"code": "def main(x):\n    return {'x': x}\n", "inputs": {"x": "1"}}, {"ran": {"x": "1"}}),
    "http_request": ({"url": "https://example.com/a"}, {"status": 200, "headers": {"Content-Type": "application/json"},
                                                       "body": '{"a": 1}', "json": {"a": 1}, "truncated": False}),
    "database": ({"credential_id": "c", "query": "SELECT 1"}, {"rows": [{"one": 1}], "row_count": 1}),
    "question_classifier": ({"classes": [{"name": "greeting", "description": "hello, hi"}]},
                            {"_port": "class1", "class": "greeting", "index": 1, "method": "lexical"}),
    "parameter_extractor": ({"parameters": [{"name": "n", "type": "number"}]}, {"n": None, "missing": [],
                                                                             "method": "none"}),
}


def test_every_builtin_is_registered():
    assert set(RUNS) <= set(REGISTRY)


@pytest.mark.parametrize("name", sorted(RUNS))
def test_node_runs_with_a_valid_config(name):
    cls = REGISTRY[name]
    assert cls.name == name and cls.version
    config, expected = RUNS[name]
    jsonschema.Draft202012Validator.check_schema(cls.config_schema)
    jsonschema.validate(config, cls.config_schema)
    ctx = NodeContext(llm_fn=lambda messages, provider: "echo: " + messages[-1]["content"],
                      retrieve_fn=lambda kbs, query, mode, top_k: [{"text": f"chunk about {query}"}],
                      code_fn=lambda code, inputs: {"ran": inputs},
                      http_fn=lambda method, url, headers, body, timeout: {
                          "status": 200, "headers": {"Content-Type": "application/json"}, "body": '{"a": 1}'},
                      sql_fn=lambda credential, query, params, rows, timeout: {"rows": [{"one": 1}], "row_count": 1})
    assert cls().run(ctx, {"config": config, "input": "hi"}) == expected


@pytest.mark.parametrize("op,left,right,result", [
    ("==", "a", "a", True), ("!=", "a", "a", False), ("<=", "2", "2", True), (">", "3", "2.5", True),
    ("contains", "Hello", "ell", True), ("starts_with", "Hello", "he", True), ("ends_with", "Hello", "x", False),
    ("is_empty", "  ", "", True), ("is_not_empty", "x", "", True)])
def test_condition_comparisons(op, left, right, result):
    out = REGISTRY["condition"]().run(NodeContext(), {"config": {"cases": [
        {"left": left, "op": op, "right": right, "port": "if"}]}})
    assert (out["_port"] == "if") is result
