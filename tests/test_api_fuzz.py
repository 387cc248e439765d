"""A property-based fuzzer over the whole API: schemathesis generates requests from /api/v1/openapi.json, sends them
in-process through the WSGI app as a signed-in owner (the public routes also with an API key) whose workspace holds
one of everything (the isolation test's ``tenants``: a knowledge base with an indexed document, a chatbot, a
credential, drafts...), with the path's ids those real ones, and checks every answer:

- no 5xx;
- the status is one the operation documents (there is no catch-all ``default``: privex/api/error_docs.py);
- the body matches the documented schema for that status (errors included), with the documented content type.

Valid requests (positive) and invalid ones (negative) for every operation, derandomized; with the hash seed `make test`
fixes (PYTHONHASHSEED=0) every run sends the same requests, so CI is stable. Operations that delete or sign out run
last, so the rest meet live resources.
"""

from __future__ import annotations

import traceback

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

from tests.test_isolation import tenants  # noqa: F401 - the fixture with one of everything

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = {GenerationMode.POSITIVE: 25, GenerationMode.NEGATIVE: 15}
MINIMUM_REQUESTS = 2_000


@pytest.fixture()
def real_ids(client, tenants):  # noqa: F811
    owner, _viewer, _outsider, ids = tenants
    bot = owner.get(f"/api/v1/chatbots/{ids['chatbot_id']}").get_json()
    key = owner.post(f"/api/v1/workspaces/{owner.workspace_id}/api-keys",
                     json={"name": "fuzzer", "permissions": ["read", "write", "chat"]}).get_json()["key"]
    session = client.post(f"/api/v1/public/bots/{bot['public_id']}/sessions", headers={"X-API-Key": key},
                          json={}).get_json()
    answer = client.post(f"/api/v1/public/bots/{bot['public_id']}/sessions/{session['session_id']}/messages",
                         headers={"X-API-Key": key}, json={"message": "holidays?"}).get_json()
    return owner, key, {**ids, "public_id": bot["public_id"], "session_id": session["session_id"],
                        "message_id": answer["message_id"], "token": "inv_whatever", "provider": "evm"}


def run_order(operation) -> tuple:
    path, method = operation.path, operation.method.upper()
    return (path.startswith("/api/v1/auth/"), "logout" in path or "change-password" in path, method == "DELETE",
            path, method)


def fuzz(operation, mode, headers, path_parameters, counter):
    # /health answers 503 on purpose (documented) when a component is down: here, with no worker running.
    checks = [check for check in CHECKS if not (operation.path == "/api/v1/health" and check is not_a_server_error)]
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters, headers=headers)

    @settings(max_examples=EXAMPLES[mode], derandomize=True, database=None, deadline=None, print_blob=False,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def check(case):
        response = case.call()
        counter.append(response.status_code)
        case.validate_response(response, checks=checks)

    check()


def test_the_api_survives_generated_requests_and_answers_as_documented(app, client, real_ids):
    owner, key, ids = real_ids
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    # Credentials are the caller's real ones (below), never generated: a made-up X-API-Key beside the token is a
    # 401 before anything else is checked.
    schema.config.generation.update(with_security_parameters=False)
    operations = sorted((result.ok() for result in schema.get_all_operations()), key=run_order)
    statuses, failures = [], []
    for operation in operations:
        headers = {"Authorization": f"Bearer {owner.access_token}"}
        if operation.path.startswith("/api/v1/public/"):
            headers = {"X-API-Key": key}
        path_parameters = {name: str(ids[name]) for name in ids if "{" + name + "}" in operation.path}
        for mode in EXAMPLES:
            try:
                fuzz(operation, mode, headers, path_parameters, statuses)
            except Unsatisfiable:  # nothing of this operation can be made invalid (no body, no free parameter)
                continue
            except (Exception, BaseExceptionGroup) as error:  # noqa: BLE001 - every finding is reported
                # Where it was raised too: an exception of the app's own propagates through the test client.
                where = "".join(traceback.format_tb(error.__traceback__)[-4:])
                failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): "
                                f"{type(error).__name__}: {str(error)[:1500]}\n{where[-3000:]}")
    print(f"{len(statuses)} requests to {len(operations)} operations:",
          {status: statuses.count(status) for status in sorted(set(statuses))})
    assert not failures, f"{len(failures)} findings:\n\n" + "\n\n".join(failures)
    assert len(statuses) >= MINIMUM_REQUESTS, len(statuses)
    assert len(operations) >= 90, len(operations)


def test_errors_are_documented_per_operation_with_one_schema(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    error = spec["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"code", "message", "errors"} and error["additionalProperties"] is False
    assert error["properties"]["errors"]["type"] == "object"
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            responses = operation["responses"]
            assert "default" not in responses, (method, path)  # a catch-all would make every status "documented"
            assert {"422", "429"} <= set(responses), (method, path)
            if operation.get("requestBody"):
                assert {"400", "413", "415"} <= set(responses), (method, path)
            if "{" in path:
                assert "404" in responses, (method, path)
            for status, response in responses.items():
                if status.startswith("4"):
                    schema = (response.get("content") or {}).get("application/json", {}).get("schema") or {}
                    reference = response.get("$ref") or schema.get("$ref", "")
                    assert reference.endswith(("/Error", "UNAUTHORIZED", "FORBIDDEN", "NOT_FOUND", "CONFLICT",
                                               "BAD_REQUEST", "REQUEST_ENTITY_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE",
                                               "UNPROCESSABLE_ENTITY", "TOO_MANY_REQUESTS")), (method, path, status)
    assert spec["paths"]["/api/v1/auth/me"]["get"]["responses"].keys() >= {"401", "403"}
    assert "401" not in spec["paths"]["/api/v1/health"]["get"]["responses"]  # public: no credentials to refuse
