"""Every operation of /api/v1/openapi.json declares the credentials it takes, and the routes take exactly those.

Swagger UI sends an "Authorize"d token only with operations that declare its scheme, so a missing or wrong
declaration is a docs page that reports success and then answers 401. The walk below reads the declarations from the
published document and calls each operation without credentials, with a JWT and with an API key, so an operation
added later is checked too.
"""

from __future__ import annotations

import io
import re

import pytest
from openapi_spec_validator import validate

from tests.helpers import PASSWORD
from tests.test_isolation import reads_files, tenants  # noqa: F401 - the fixture with one of everything

SITE = "https://shop.example"
BEARER, API_KEY, ANONYMOUS = {"bearerAuth": []}, {"apiKey": []}, {}
METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture()
def spec(client):
    return client.get("/api/v1/openapi.json").get_json()


def operations(spec):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def test_every_operation_declares_known_schemes(spec):
    validate(spec)
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearerAuth"]["scheme"] == "bearer" and schemes["apiKey"]["name"] == "X-API-Key"
    undeclared = [f"{method.upper()} {path}" for path, method, operation in operations(spec)
                  if "security" not in operation]
    assert not undeclared
    used = {name for _, _, operation in operations(spec) for requirement in operation["security"]
            for name in requirement}
    assert used == set(schemes)


def test_the_declarations_say_what_each_kind_of_route_takes(spec):
    security = {(method, path): operation["security"] for path, method, operation in operations(spec)}
    # sign-in and open routes: nothing
    for route in [("post", "/api/v1/auth/email/login"), ("post", "/api/v1/auth/email/signup"),
                  ("post", "/api/v1/auth/refresh"), ("post", "/api/v1/auth/{provider}/challenge"),
                  ("post", "/api/v1/auth/{provider}/verify"), ("get", "/api/v1/health")]:
        assert security[route] == [], route
    # a person's own account and the organization: a JWT only
    for route in [("get", "/api/v1/auth/me"), ("post", "/api/v1/auth/{provider}/link"), ("get", "/api/v1/orgs"),
                  ("post", "/api/v1/workspaces/{ws_id}/api-keys"), ("patch", "/api/v1/workspaces/{ws_id}")]:
        assert security[route] == [BEARER], route
    # workspace resources: a JWT or an API key
    for route in [("get", "/api/v1/knowledge-bases"), ("post", "/api/v1/knowledge-bases/{kb_id}/query"),
                  ("delete", "/api/v1/chatbots/{chatbot_id}"), ("get", "/api/v1/workspaces/{ws_id}")]:
        assert security[route] == [BEARER, API_KEY], route
    # the public chat API: an API key, or a browser on an allowed origin (no credentials)
    for route in [("post", "/api/v1/public/bots/{public_id}/sessions"), ("get", "/api/v1/public/bots/{public_id}")]:
        assert security[route] == [API_KEY, ANONYMOUS], route


def fill(path: str, ids: dict) -> str:
    def value(match):
        assert match.group(1) in ids, f"{path}: no value for {{{match.group(1)}}}; add one to the walk"
        return str(ids[match.group(1)])

    return re.sub(r"{(\w+)}", value, path)


# Well-formed bodies where a route reads its body before it refuses a caller (the public chat API checks its caller
# after the body, a person-only route refuses an API key in the view): a 422 would hide whether the caller passed.
BODIES = {
    ("post", "/api/v1/auth/email/change-password"): {"current_password": PASSWORD, "new_password": "N3w-passw0rd!"},
    ("post", "/api/v1/auth/{provider}/link"): {"nonce": "0" * 32, "signature": "0x00"},
    ("post", "/api/v1/auth/switch-context"): {"organization_id": "{org_id}"},
    ("post", "/api/v1/orgs"): {"name": "Another"},
    ("post", "/api/v1/public/bots/{public_id}/sessions/{session_id}/messages"): {"message": "holidays?"},
    ("post", "/api/v1/public/bots/{public_id}/messages/{message_id}/feedback"): {"rating": 1},
    ("post", "/api/v1/public/bots/{public_id}/leads"): {"session_id": "{session_id}"},
}


def deletes_last(step) -> tuple:
    """Deletes after the rest (they remove what other routes are called on), the widest (an organization) last;
    logging out ends the owner's session, so it comes last of all."""
    url, method = step[0], step[1]
    return "/auth/logout" in url, method == "delete", -url.count("/"), -len(url)


def test_every_route_takes_exactly_the_credentials_it_declares(client, spec, tenants):  # noqa: F811
    owner, _viewer, _outsider, ids = tenants
    key = owner.post(f"/api/v1/workspaces/{owner.workspace_id}/api-keys",
                     json={"name": "everything", "permissions": ["read", "write", "chat"]}).get_json()["key"]
    bot = owner.patch(f"/api/v1/chatbots/{ids['chatbot_id']}", json={"config": {"allowed_origins": [SITE]}})
    assert bot.status_code == 200, bot.get_json()
    answer = owner.post(f"/api/v1/chatbots/{ids['chatbot_id']}/test", json={"message": "holidays?"}).get_json()
    ids = {**ids, "public_id": bot.get_json()["public_id"], "message_id": answer["message_id"],
           "token": "inv_whatever", "provider": "evm"}
    walk = sorted(((fill(path, ids), method, operation["security"],
                    {name: fill(value, ids) if isinstance(value, str) else value
                     for name, value in BODIES.get((method, path), {}).items()})
                   for path, method, operation in operations(spec)), key=deletes_last)
    checked, wrong = {"none": 0, "jwt": 0, "api key": 0, "origin": 0}, []

    def expect(url, method, headers, body, accepted, what):
        rule = client.application.url_map.bind("localhost").match(url, method=method.upper(), return_rule=True)[0]
        if reads_files(client.application, rule, method.upper()):  # an upload takes a form (JSON there is a 415)
            response = client.open(url, method=method.upper(), headers=headers, data={"file": (io.BytesIO(b"hi"),
                                                                                            "hi.txt")},
                                   content_type="multipart/form-data")
        else:
            response = client.open(url, method=method.upper(), headers=headers,
                                   json=body if method != "get" else None)
        if (response.status_code not in (401, 403)) != accepted or (accepted is False and what == "none" and
                                                                   response.status_code != 401):
            wrong.append((method.upper(), url, what, response.status_code, response.get_json()["message"]))
        checked[what] += 1

    for url, method, security, body in walk:
        public = security == [] or ANONYMOUS in security
        # Without credentials: 401, unless the route is open (the public chat API then wants an allowed Origin).
        expect(url, method, {}, body or {}, security == [], "none")
        if security == []:
            continue
        if API_KEY in security:  # an API key, sent either way it may be
            expect(url, method, {"X-API-Key": key}, body or {}, True, "api key")
            if method == "get" or public:
                expect(url, method, {"Authorization": f"Bearer {key}"}, body or {}, True, "api key")
        else:
            expect(url, method, {"X-API-Key": key}, body or {}, False, "api key")
        if public:  # the public chat API: a browser on an allowed origin, but not a JWT
            expect(url, method, {"Origin": SITE}, body or {}, True, "origin")
            expect(url, method, owner.headers, body or {}, False, "jwt")
        else:  # auth comes before the body here: {} shows whether the JWT passed
            expect(url, method, owner.headers, {}, BEARER in security, "jwt")
    assert not wrong, "\n".join(map(str, wrong))
    assert checked["jwt"] >= 60 and checked["api key"] >= 40 and checked["none"] >= 70, checked
