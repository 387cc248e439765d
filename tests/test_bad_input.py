"""Bad input on every API route: malformed JSON, bodies of the wrong shape, fields of the wrong type, nonsense query
strings. Each gets a JSON 4xx saying what is wrong, never a 500, on whatever route exists now or is added later
(the walk is the isolation test's: every route under /api/v1, filled with the owner's real ids)."""

from __future__ import annotations

import json

import pytest

from tests.test_isolation import fill_ids, tenants  # noqa: F401 - the fixture with one of everything

ODD_VALUES = [[], {}, -1, 10**20, None, True, "x" * 5000, "\u0000", "../../etc/passwd", 1.5]
FIELDS = ["name", "email", "password", "role", "permissions", "query", "mode", "top_k", "threshold", "filters",
          "message", "messages", "stream", "session_id", "config", "settings", "secret", "provider", "credential_id",
          "knowledge_base_ids", "document_ids", "page_ids", "url", "max_depth", "max_pages", "chunking_strategy",
          "chunking_config", "source_id", "rating", "fields", "consent", "metadata", "description", "expires_at",
          "model_params", "retrieval", "lead_capture", "allowed_origins", "token", "signature", "address", "nonce",
          "public_key", "refresh_token", "limit", "page", "per_page"]


def bodies():
    yield "malformed JSON", {"data": '{"name": "unterminated', "content_type": "application/json"}
    yield "not an object", {"json": ["a", "list"]}
    yield "a bare string", {"json": "hello"}
    yield "a number", {"json": 42}
    yield "null", {"json": None}
    for offset in range(len(ODD_VALUES)):
        odd = {name: ODD_VALUES[(index + offset) % len(ODD_VALUES)] for index, name in enumerate(FIELDS)}
        yield f"wrong types #{offset}", {"json": odd}


QUERY_STRINGS = ["page=-1&per_page=abc", "page=99999999999999999999&per_page=0", "status=%00&mode=nope&days=-5",
                 "limit=1e9&q=" + "x" * 3000]


def all_api_routes(app):
    for rule in app.url_map.iter_rules():
        # /health answers 503 on purpose when a component is down (here: no worker), whatever it is asked.
        if rule.rule.startswith("/api/v1/") and rule.rule != "/api/v1/health" and \
                rule.endpoint != "api-docs.openapi_json":
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                yield rule, method


def check(response, what):
    assert response.status_code < 500, (what, response.status_code, response.get_data(as_text=True)[:500])
    if response.status_code >= 400:
        body = response.get_json(silent=True)
        assert isinstance(body, dict) and body.get("code") == response.status_code and body.get("message"), (
            what, response.get_data(as_text=True)[:500])


def test_no_body_of_any_shape_makes_any_route_fail_with_a_500(app, client, tenants):  # noqa: F811
    owner, _viewer, _outsider, ids = tenants
    bot = owner.get(f"/api/v1/chatbots/{ids['chatbot_id']}").get_json()
    answer = owner.post(f"/api/v1/chatbots/{ids['chatbot_id']}/test", json={"message": "holidays?"}).get_json()
    filled = {**ids, "public_id": bot["public_id"], "message_id": answer["message_id"], "token": "inv_whatever",
              "provider": "evm"}
    # Deletes after the rest (they remove what other routes are called on), and the auth routes last of all: a
    # logout ends the session every other request is made in.
    routes = sorted(all_api_routes(app), key=lambda route: (
        route[0].rule.startswith("/api/v1/auth/"), "logout" in route[0].rule, route[1] == "DELETE"))
    statuses = []
    for rule, method in routes:
        path = fill_ids(rule, filled)
        if method in {"POST", "PUT", "PATCH"}:
            calls = [(label, {"method": method, **body}) for label, body in bodies()]
        else:
            calls = [(query, {"method": method, "query_string": query}) for query in QUERY_STRINGS]
        for label, arguments in calls:
            response = client.open(path, headers=owner.headers, **arguments)
            check(response, (method, rule.rule, label))
            statuses.append(response.status_code)
    assert len(statuses) >= 500, len(statuses)
    # The walk reached the routes' own checks: the owner was signed in for all but the last few (after logout).
    assert statuses.count(401) < len(statuses) * 0.05, statuses.count(401)


@pytest.mark.parametrize("header", ["Bearer", "Bearer " + "a" * 10000, "Basic dXNlcjpwYXNz", "Bearer a.b.c",
                                    "Bearer \u00e9\u00e9"])
def test_odd_authorization_headers_are_a_401(client, header):
    response = client.get("/api/v1/knowledge-bases", headers={"Authorization": header.encode("utf-8").decode(
        "latin-1")})
    assert response.status_code == 401 and response.get_json()["code"] == 401


def test_a_json_body_that_is_not_utf8_is_a_400(client, tenants):  # noqa: F811
    owner = tenants[0]
    response = client.post("/api/v1/knowledge-bases", data=b'{"name": "\xff\xfe"}', headers=owner.headers,
                           content_type="application/json")
    assert response.status_code == 400 and json.loads(response.get_data())["code"] == 400


def test_the_public_api_answers_bad_input_from_a_server_or_a_page_with_a_4xx(app, client, tenants):  # noqa: F811
    owner, _viewer, _outsider, ids = tenants
    bot = owner.patch(f"/api/v1/chatbots/{ids['chatbot_id']}",
                      json={"config": {"allowed_origins": ["https://shop.example"]}}).get_json()
    key = owner.post(f"/api/v1/workspaces/{owner.workspace_id}/api-keys",
                     json={"name": "server", "permissions": ["chat", "write"]}).get_json()["key"]
    session = client.post(f"/api/v1/public/bots/{bot['public_id']}/sessions", headers={"X-API-Key": key},
                          json={}).get_json()
    answer = client.post(f"/api/v1/public/bots/{bot['public_id']}/sessions/{session['session_id']}/messages",
                         headers={"X-API-Key": key}, json={"message": "holidays?"}).get_json()
    filled = {**ids, "public_id": bot["public_id"], "message_id": answer["message_id"],
              "session_id": session["session_id"]}
    callers = {"api key": {"X-API-Key": key}, "allowed page": {"Origin": "https://shop.example"}}
    statuses = []
    for rule, method in all_api_routes(app):
        if not rule.rule.startswith("/api/v1/public/"):
            continue
        path = fill_ids(rule, filled)
        for caller, headers in callers.items():
            calls = [(label, body) for label, body in bodies()] if method == "POST" else [(q, {"query_string": q})
                                                                                           for q in QUERY_STRINGS]
            for label, arguments in calls:
                response = client.open(path, method=method, headers=headers, **arguments)
                check(response, (method, rule.rule, caller, label))
                statuses.append(response.status_code)
    assert len(statuses) >= 60 and statuses.count(401) == 0, statuses
