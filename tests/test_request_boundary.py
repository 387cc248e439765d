"""The request boundary (privex/api/bodies.py), checked on every route the app has, so routes added later are covered:

- a JSON body too deep, with too many entries in one object or array, or too many values in all, is a 400 naming
  the limit, before anything parses it; numbers no column takes (NaN, Infinity, 1e999, 100-digit integers) are 400s;
- every string in a JSON body (keys and values, at any depth), query string, form field or file name holding a NUL
  or a lone surrogate is a 422 naming that field by its dotted path; PostgreSQL could store neither;
- a form sent to a JSON route, or JSON to an upload, is a 415 naming the body the route takes;
- an upload over the part limit is a 413 naming that limit, not the size one.
"""

from __future__ import annotations

import io
import json
import re
import sys

import pytest
from werkzeug.test import encode_multipart

from privex.api import bodies
from tests.test_bad_input import all_api_routes
from tests.test_isolation import fill_ids, tenants  # noqa: F401 - the fixture with one of everything

NUL, SURROGATE = "bad\u0000text", "bad\ud800text"


@pytest.fixture()
def filled(tenants):  # noqa: F811
    owner, _viewer, _outsider, ids = tenants
    bot = owner.get(f"/api/v1/chatbots/{ids['chatbot_id']}").get_json()
    answer = owner.post(f"/api/v1/chatbots/{ids['chatbot_id']}/test", json={"message": "holidays?"}).get_json()
    return {**ids, "public_id": bot["public_id"], "message_id": answer["message_id"], "token": "inv_whatever",
            "provider": "evm"}


def json_routes(app):
    """Every API route and method whose view reads a JSON body."""
    for rule, method in all_api_routes(app):
        view = app.view_functions[rule.endpoint]
        handler = getattr(getattr(view, "view_class", None), method.lower(), view)
        if any(p["in"] == "json" for p in getattr(handler, "_apidoc", {}).get("arguments", {}).get("parameters", [])):
            yield rule, method


def nested(depth: int, leaf: str = "1") -> str:
    """JSON text ``depth`` containers deep (objects and arrays in turn) around ``leaf``; built as text, since the
    interpreter's own recursion limit (1,000) stops json.dumps first."""
    opening = "".join('{"k": ' if level % 2 == 0 else "[" for level in range(depth))
    closing = "".join("}" if level % 2 == 0 else "]" for level in reversed(range(depth)))
    return opening + leaf + closing


# -- shape limits ----------------------------------------------------------------------------------------------------

def test_the_scanner_counts_depth_and_entries_without_being_fooled_by_strings():
    assert bodies.check_json_shape(nested(bodies.MAX_DEPTH).encode()) is None
    assert json.loads(nested(bodies.MAX_DEPTH))["k"][0]
    assert "deeper than 32" in bodies.check_json_shape(nested(bodies.MAX_DEPTH + 1).encode())
    # Brackets, braces, commas and escaped quotes inside strings are text, not structure.
    assert bodies.check_json_shape(json.dumps({"a": "[[[[{{{{,,,," * 10_000 + '\\"[' * 50}).encode()) is None
    assert bodies.check_json_shape(json.dumps(list(range(bodies.MAX_ITEMS))).encode()) is None
    assert "more than 10,000 entries" in bodies.check_json_shape(
        json.dumps({"a": list(range(bodies.MAX_ITEMS + 1))}).encode())
    many = {f"k{i}": list(range(9_000)) for i in range(12)}
    assert "more than 100,000 values" in bodies.check_json_shape(json.dumps(many).encode())


HOSTILE_BODIES = {
    "100,000 deep": (b'{"email": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested deeper than 32"),
    "a top-level array 100,000 deep": (b"[" * 100_000 + b"]" * 100_000, "nested deeper than 32"),
    "1,000 deep objects": (nested(1_000).encode(), "nested deeper than 32"),
    "33 deep": (('{"name": ' + nested(32) + "}").encode(), "nested deeper than 32"),
    "10,001 entries": (json.dumps({"knowledge_base_ids": [1] * 10_001}).encode(), "more than 10,000 entries"),
    "100,001 values": (json.dumps([[0] * 9_000] * 12).encode(), "more than 100,000 values"),
    "NaN": (b'{"name": NaN}', "NaN is not a JSON number"),
    "Infinity": (b'{"name": -Infinity}', "-Infinity is not a JSON number"),
    "1e999": (b'{"top_k": 1e999}', "too large"),
    "a 5,000-digit integer": (b'{"top_k": ' + b"9" * 5_000 + b"}", "more than 64 digits"),
    "not JSON": (b'{"name": "unterminated', "cannot be read as JSON"),
}


def test_every_json_route_refuses_hostile_json_with_a_400_naming_the_limit(app, client, tenants, filled):  # noqa: F811
    owner = tenants[0]
    checked = 0
    for rule, method in json_routes(app):
        path = fill_ids(rule, filled)
        for label, (body, limit) in HOSTILE_BODIES.items():
            response = client.open(path, method=method, data=body, headers=owner.headers,
                                   content_type="application/json")
            assert response.status_code == 400, (method, rule.rule, label, response.get_data(as_text=True)[:300])
            answer = response.get_json()
            assert answer["code"] == 400 and limit in answer["message"], (method, rule.rule, label, answer)
            assert isinstance(answer["errors"], dict)
        checked += 1
    assert checked >= 40, checked


@pytest.mark.parametrize("where, body", [
    ("knowledge-base chunking_config", lambda ids: ("POST", "/api/v1/knowledge-bases",
                                                    {"name": "kb", "chunking_config": "DEEP"})),
    ("chatbot config", lambda ids: ("PATCH", f"/api/v1/chatbots/{ids['chatbot_id']}", {"config": "DEEP"})),
    ("workspace settings", lambda ids: ("PATCH", f"/api/v1/workspaces/{ids['ws_id']}", {"settings": "DEEP"})),
    ("credential secret", lambda ids: ("POST", "/api/v1/credentials",
                                       {"name": "n", "provider": "notion", "secret": "DEEP"})),
    ("query filters", lambda ids: ("POST", f"/api/v1/knowledge-bases/{ids['kb_id']}/query",
                                   {"query": "holidays", "filters": "DEEP"})),
])
def test_free_form_fields_take_real_nesting_and_refuse_deeper(client, tenants, where, body):  # noqa: F811
    owner, _viewer, _outsider, ids = tenants
    method, path, payload = body(ids)
    text = json.dumps(payload)
    for depth, refused in ((1_000, True), (bodies.MAX_DEPTH + 1, True), (bodies.MAX_DEPTH, False)):
        deep = text.replace('"DEEP"', nested(depth - 1, leaf='"x"'))  # the body itself is one level
        response = client.open(path, method=method, data=deep, headers=owner.headers,
                               content_type="application/json")
        if refused:
            assert response.status_code == 400 and "nested deeper than 32" in response.get_json()["message"], (
                where, depth, response.get_json())
        else:
            assert response.status_code != 400 and response.status_code < 500, (where, depth, response.get_json())


def test_pages_and_the_back_office_refuse_hostile_json_too(client):
    deep = b"[" * 100_000 + b"]" * 100_000
    for path in ("/login", "/logout", "/admin/user/new/", "/"):
        response = client.post(path, data=deep, content_type="application/json")
        assert response.status_code == 400, (path, response.status_code)
        assert response.mimetype == "text/html" and "nested deeper than 32" in response.get_data(as_text=True)


def test_the_recursion_guard_is_back_after_the_app_is_built(app):
    """py_ecc (under eth-account) raises it to 100,000 at import; then a deep recursion crashed the process."""
    import py_ecc  # noqa: F401 - imported, and its limit undone by create_app

    assert sys.getrecursionlimit() <= 1000


# -- strings PostgreSQL cannot store ---------------------------------------------------------------------------------

def resolve(spec, schema):
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def field_paths(spec, schema, prefix=(), depth=0):
    """Every field a body schema names, as paths: nested objects' fields, a free key in a free-form object (its
    value and the key itself), the first item of a list."""
    schema = resolve(spec, schema)
    if depth > 4:
        return
    if schema.get("properties"):
        for name, sub in schema["properties"].items():
            if resolve(spec, sub).get("readOnly"):
                continue
            yield (*prefix, name)
            yield from field_paths(spec, sub, (*prefix, name), depth + 1)
    elif schema.get("type") == "object":
        yield (*prefix, "free_key")
    elif schema.get("type") == "array":
        yield (*prefix, 0)
        yield from field_paths(spec, schema.get("items", {}), (*prefix, 0), depth + 1)


def body_with(path, value):
    """The smallest body that holds ``value`` at ``path``."""
    for part in reversed(path):
        value = [value] if part == 0 else {part: value}
    return value


def operation(spec, rule, method):
    """The OpenAPI operation of a route: ``<uuid:kb_id>`` there is ``{kb_id}`` here."""
    return spec["paths"].get(re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule), {}).get(method.lower())


def test_every_field_of_every_json_body_refuses_nul_and_lone_surrogates_naming_the_field(app, client, tenants,
                                                                                          filled):  # noqa: F811
    owner = tenants[0]
    spec = client.get("/api/v1/openapi.json").get_json()
    fields = 0
    for rule, method in json_routes(app):
        described = operation(spec, rule, method)
        assert described, (method, rule.rule)
        schema = described["requestBody"]["content"]["application/json"]["schema"]
        for path in field_paths(spec, schema):
            dotted = ".".join(str(part) for part in path)
            for bad in (NUL, SURROGATE):
                response = client.open(fill_ids(rule, filled), method=method, json=body_with(path, bad),
                                       headers=owner.headers)
                answer = response.get_json()
                assert response.status_code == 422 and list(answer["errors"]) == [dotted], (
                    method, rule.rule, dotted, repr(bad), response.status_code, answer)
                assert "\\u0000" in answer["errors"][dotted][0] or "\\ud800" in answer["errors"][dotted][0]
            fields += 1
            if path[-1] == "free_key":  # the key itself is text too
                key_path = (*path[:-1], NUL)
                response = client.open(fill_ids(rule, filled), method=method, json=body_with(key_path, "ok"),
                                       headers=owner.headers)
                assert response.status_code == 422, (method, rule.rule, key_path, response.get_json())
                assert list(response.get_json()["errors"]) == [".".join(map(str, path[:-1])) + ".bad\ufffdtext"]
    assert fields >= 150, fields


# The fields found answering 500 before the boundary existed, each in an otherwise valid request.
def reported(ids, bot):
    public = f"/api/v1/public/bots/{bot['public_id']}"
    return [
        ("POST", "/api/v1/knowledge-bases", {"name": NUL}, "name"),
        ("POST", "/api/v1/knowledge-bases", {"name": "kb", "description": SURROGATE}, "description"),
        ("PATCH", f"/api/v1/knowledge-bases/{ids['kb_id']}", {"name": SURROGATE}, "name"),
        ("POST", "/api/v1/chatbots", {"name": NUL}, "name"),
        ("PATCH", f"/api/v1/chatbots/{ids['chatbot_id']}", {"description": NUL}, "description"),
        ("PATCH", f"/api/v1/chatbots/{ids['chatbot_id']}", {"config": {"system_prompt": NUL}},
         "config.system_prompt"),
        ("POST", f"/api/v1/knowledge-bases/{ids['kb_id']}/query", {"query": NUL}, "query"),
        ("POST", f"/api/v1/knowledge-bases/{ids['kb_id']}/query", {"query": "x", "filters": {"a": NUL}},
         "filters.a"),
        ("POST", f"/api/v1/chatbots/{ids['chatbot_id']}/test", {"message": NUL}, "message"),
        ("PATCH", f"/api/v1/orgs/{ids['org_id']}", {"name": SURROGATE}, "name"),
        ("PATCH", f"/api/v1/workspaces/{ids['ws_id']}", {"settings": {"theme": NUL}}, "settings.theme"),
        ("PATCH", f"/api/v1/workspaces/{ids['ws_id']}", {"settings": {"a\u0000b": 1}}, "settings.a\ufffdb"),
        ("POST", "/api/v1/auth/email/login", {"email": NUL, "password": "x"}, "email"),
        ("POST", "/api/v1/auth/email/signup", {"email": "n@example.com", "password": "Sup3r-secret!",
                                               "display_name": SURROGATE}, "display_name"),
        ("POST", f"{public}/sessions", {"external_user_id": NUL}, "external_user_id"),
        ("POST", f"{public}/sessions", {"metadata": {"plan": SURROGATE}}, "metadata.plan"),
        ("POST", f"{public}/sessions/{ids['session_id']}/messages", {"message": "hi", "messages": [
            {"role": "user", "content": NUL}]}, "messages.0.content"),
        ("POST", f"{public}/leads", {"name": NUL, "email": "lead@example.com"}, "name"),
    ]


def test_the_reported_fields_answer_422_naming_the_field(client, tenants, filled):  # noqa: F811
    owner, _viewer, _outsider, ids = tenants
    bot = owner.get(f"/api/v1/chatbots/{ids['chatbot_id']}").get_json()
    for method, path, body, field in reported(ids, bot):
        response = client.open(path, method=method, json=body, headers=owner.headers)
        assert response.status_code == 422, (method, path, field, response.get_json())
        assert list(response.get_json()["errors"]) == [field], (method, path, response.get_json())
    for query in ("q=%00", "q=a%00b", "status=%00"):
        for path in ("/api/v1/documents", "/api/v1/chatbots"):
            response = owner.get(f"{path}?{query}")
            assert response.status_code == 422, (path, query, response.get_json())
            assert list(response.get_json()["errors"]) == [query.split("=")[0]]


def test_every_query_string_refuses_nul_naming_the_parameter(app, client, tenants, filled):  # noqa: F811
    owner = tenants[0]
    checked = 0
    for rule, method in all_api_routes(app):
        response = client.open(fill_ids(rule, filled) + "?page=1&q=x%00y", method=method, headers=owner.headers)
        assert response.status_code == 422 and list(response.get_json()["errors"]) == ["q"], (
            method, rule.rule, response.get_json())
        checked += 1
    assert checked >= 90, checked


def test_text_that_postgresql_stores_is_accepted(client, tenants):  # noqa: F811
    owner = tenants[0]
    name = "caf\u00e9 \U0001F600 \u4e2d\u6587 \ufffd tab\t"  # the emoji is a proper surrogate pair in JSON
    created = owner.post("/api/v1/knowledge-bases", data=json.dumps({"name": name}),
                         content_type="application/json")
    assert created.status_code == 201 and created.get_json()["name"] == name


def test_upload_file_names_and_form_fields_are_checked(client, tenants):  # noqa: F811
    owner, _viewer, _outsider, ids = tenants
    path = f"/api/v1/knowledge-bases/{ids['kb_id']}/documents/upload"
    response = owner.post(path, data={"file": (io.BytesIO(b"hello"), "ho\u0000urs.txt")},
                          content_type="multipart/form-data")
    assert response.status_code == 422 and list(response.get_json()["errors"]) == ["file.filename"]
    response = owner.post(path, data={"files": [(io.BytesIO(b"a"), "a.txt"), (io.BytesIO(b"b"), "b\u0000.txt")]},
                          content_type="multipart/form-data")
    assert response.status_code == 422 and list(response.get_json()["errors"]) == ["files.1.filename"]
    response = owner.post(path, data={"note": "a\u0000", "file": (io.BytesIO(b"hello"), "ok.txt")},
                          content_type="multipart/form-data")
    assert response.status_code == 422 and list(response.get_json()["errors"]) == ["note"]


def test_a_path_argument_no_row_can_hold_is_a_404(client, tenants):  # noqa: F811
    owner = tenants[0]
    for method, path in (("GET", "/api/v1/public/bots/ab%00cd"), ("POST", "/api/v1/invitations/inv%00x/accept"),
                         ("GET", "/widget/demo/x%00")):
        response = client.open(path, method=method, headers=owner.headers)
        assert response.status_code == 404, (path, response.get_data(as_text=True)[:200])


# -- body types and form limits --------------------------------------------------------------------------------------

def test_a_form_sent_to_a_json_route_is_a_415_naming_json(app, client, tenants, filled):  # noqa: F811
    owner = tenants[0]
    checked = 0
    for rule, method in json_routes(app):
        for data in ({"name": "x"}, {"file": (io.BytesIO(b"x"), "x.txt")}):
            response = client.open(fill_ids(rule, filled), method=method, data=data, headers=owner.headers,
                                   content_type="multipart/form-data")
            answer = response.get_json()
            assert response.status_code == 415 and "application/json" in answer["message"], (
                method, rule.rule, answer)
            assert "multipart/form-data" in answer["message"]
        checked += 1
    assert checked >= 40


def test_json_sent_to_an_upload_is_a_415_naming_multipart(client, tenants):  # noqa: F811
    owner, _viewer, _outsider, ids = tenants
    for path in (f"/api/v1/knowledge-bases/{ids['kb_id']}/documents/upload",
                 f"/api/v1/kb-drafts/{ids['draft_id']}/documents/upload",
                 f"/api/v1/documents/batch-upload?knowledge_base_id={ids['kb_id']}"):
        response = owner.post(path, json={"file": "hello"})
        assert response.status_code == 415 and "multipart/form-data" in response.get_json()["message"], path


def test_too_many_files_is_a_413_naming_the_file_limit_not_the_size(app, client, tenants):  # noqa: F811
    owner, _viewer, _outsider, ids = tenants
    limit = app.config["MAX_UPLOAD_FILES"]
    path = f"/api/v1/knowledge-bases/{ids['kb_id']}/documents/upload"
    files = [(io.BytesIO(b"x" * 150), f"note{i}.txt") for i in range(1_001)]
    response = owner.post(path, data={"files": files}, content_type="multipart/form-data")
    answer = response.get_json()
    assert response.status_code == 413 and f"at most {limit} files" in answer["message"], answer
    assert "MB" not in answer["message"]
    response = owner.post(path, data={"files": [(io.BytesIO(b"x"), f"n{i}.txt") for i in range(limit + 1)]},
                          content_type="multipart/form-data")
    assert response.status_code == 413
    response = owner.post(path, data={"files": [(io.BytesIO(b"x"), f"n{i}.txt") for i in range(limit)]},
                          content_type="multipart/form-data")
    assert response.status_code == 202 and len(response.get_json()) == limit


def test_a_large_text_field_in_a_form_is_a_413_naming_that_limit(client, tenants):  # noqa: F811
    owner, _viewer, _outsider, ids = tenants
    # Encoded here, in memory: the test client spools a body this large to a temporary file it never closes.
    boundary, body = encode_multipart({"note": "x" * 600_000, "file": (io.BytesIO(b"x"), "a.txt")})
    response = owner.post(f"/api/v1/knowledge-bases/{ids['kb_id']}/documents/upload", data=body,
                          content_type=f"multipart/form-data; boundary={boundary}")
    assert response.status_code == 413 and "form field other than a file" in response.get_json()["message"]


def test_a_form_field_without_a_value_is_not_a_crash():
    """Some clients hand a field sent with no value to the app as None (the fuzzer's test client did, in the suite's
    full collection): the storable-text rule has nothing to refuse in it, rather than failing the request."""
    from privex.api.bodies import _unstorable_pairs, unstorable_reason

    assert unstorable_reason(None) is None
    assert _unstorable_pairs([("modes", [None]), ("k", ["1,5"])]) == {}
    assert _unstorable_pairs([("modes", [None, "a\x00b"])]) == {
        "modes": ["This value contains a NUL character (\\u0000), which cannot be stored."]}
