"""Tenant isolation, checked on every API route the app has, so routes added later are covered automatically.

For each non-public route under /api/v1 and each of its methods:
- no credentials, a tampered token, an expired token, a token signed with another key: 401;
and for each route whose URL names ids (``<uuid:...>``), filled with tenant A's real ids:
- the owner of another organization: 404 (ids of other tenants do not even leak their existence);
- a viewer of A (organization member, workspace viewer) attempting a write: 403.

A route opts out only by being marked ``@public``. Id parameters must be listed in ``fill_ids`` below; a route with
an unknown one fails the test, so a new kind of id is never silently skipped.
"""

from __future__ import annotations

import io
import re
import uuid
from datetime import datetime, timedelta, timezone

import jwt
import pytest

from privex.services.errors import NotAuthenticated, NotFound
from tests.helpers import add_member, sign_up

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def api_routes(app):
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        view = app.view_functions[rule.endpoint]
        view_class = getattr(view, "view_class", None)
        if getattr(view_class, "public", False) or getattr(view, "public", False):
            continue
        if rule.endpoint in ("api-docs.openapi_json",):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule, method


def id_arguments(rule) -> list[str]:
    return [name for name, converter in rule._converters.items() if type(converter).__name__ == "UUIDConverter"]


@pytest.fixture()
def tenants(client, database):
    """Tenant A (owner, plus a viewer) with one of everything an id can name; and an outsider B."""
    owner = sign_up(client, "alice")
    viewer = add_member(owner, sign_up(client, "victor"), org_role="member", workspace_role="viewer")
    outsider = sign_up(client, "mallory")
    invitation = owner.post(f"/api/v1/orgs/{owner.organization_id}/members",
                            json={"email": "pending@example.com", "role": "member"}).get_json()["invitation"]
    key = owner.post(f"/api/v1/workspaces/{owner.workspace_id}/api-keys",
                     json={"name": "ci", "permissions": ["read"]}).get_json()
    kb = owner.post("/api/v1/knowledge-bases", json={"name": "handbook"}).get_json()
    document = owner.post(f"/api/v1/knowledge-bases/{kb['id']}/documents/upload",
                          data={"file": (io.BytesIO(b"# Holidays\n\nTwenty-five days a year."), "holidays.md")},
                          content_type="multipart/form-data").get_json()[0]
    credential = owner.post("/api/v1/credentials", json={"name": "notion", "provider": "notion",
                                                         "secret": {"token": "secret_abc"}}).get_json()
    draft = owner.post("/api/v1/kb-drafts", json={"name": "draft"}).get_json()
    source = owner.post(f"/api/v1/kb-drafts/{draft['id']}/documents/upload",
                        data={"file": (io.BytesIO(b"Opening hours: 9 to 5."), "hours.txt")},
                        content_type="multipart/form-data").get_json()[0]
    bot = owner.post("/api/v1/chatbots", json={"name": "helper", "knowledge_base_ids": [kb["id"]]}).get_json()
    bot_draft = owner.post("/api/v1/chatbots/drafts", json={"name": "helper draft"}).get_json()
    chat_session = owner.post(f"/api/v1/chatbots/{bot['id']}/test", json={"message": "holidays?"}).get_json()
    flow = owner.post("/api/v1/chatflows", json={"name": "flow"}).get_json()
    owner.post(f"/api/v1/chatflows/{flow['id']}/publish", json={})
    flow_session = owner.post(f"/api/v1/chatflows/{flow['id']}/execute", json={"message": "hi"}).get_json()
    flow_draft = owner.post("/api/v1/chatflows/drafts", json={"name": "flow draft"}).get_json()
    run = owner.post(f"/api/v1/knowledge-bases/{kb['id']}/evaluations", json={
        "questions": [{"question": "How many holidays?", "relevant_document_names": ["holidays.md"]}],
        "modes": ["keyword"]}).get_json()
    ids = {"org_id": owner.organization_id, "ws_id": owner.workspace_id, "user_id": owner.user_id,
           "invitation_id": invitation["id"], "key_id": key["id"], "kb_id": kb["id"], "doc_id": document["id"],
           "cred_id": credential["id"], "draft_id": draft["id"], "source_id": source["id"], "chatbot_id": bot["id"],
           "bot_draft_id": bot_draft["id"], "session_id": chat_session["session_id"],
           "run_id": run["id"], "chatflow_id": flow["id"], "flow_draft_id": flow_draft["id"],
           "flow_session_id": flow_session["session_id"]}
    return owner, viewer, outsider, ids


def fill_ids(rule, ids: dict) -> str:
    arguments = {}
    for name in rule.arguments:
        if name not in ids:
            pytest.fail(f"{rule.rule}: no tenant-A value for URL argument {name!r}; add one to the `tenants` fixture")
        arguments[name] = ids[name]
    path = rule.rule
    for name, value in arguments.items():
        path = path.replace(f"<uuid:{name}>", str(value)).replace(f"<{name}>", str(value))
        path = path.replace(f"<string:{name}>", str(value))
        path = re.sub(rf"<any\([^)]*\):{name}>", str(value), path)
    return path


def reads_files(app, rule, method) -> bool:
    view = app.view_functions[rule.endpoint]
    handler = getattr(getattr(view, "view_class", None), method.lower(), view)
    return any(p["in"] == "files" for p in getattr(handler, "_apidoc", {}).get("arguments", {}).get("parameters", []))


def call(client, method, path, headers):
    """The request as the route takes it (an upload's body is a form: JSON there is a 415 before anything else)."""
    rule = client.application.url_map.bind("localhost").match(path, method=method, return_rule=True)[0]
    if method in WRITE_METHODS and reads_files(client.application, rule, method):
        return client.open(path, method=method, headers=headers, data={"file": (io.BytesIO(b"hi"), "hi.txt")},
                           content_type="multipart/form-data")
    return client.open(path, method=method, headers=headers, json={} if method in WRITE_METHODS else None)


def test_every_protected_route_refuses_missing_and_bad_credentials(app, client, tenants):
    owner, _viewer, _outsider, ids = tenants
    secret = app.config["SECRET_KEY"]
    claims = jwt.decode(owner.access_token, secret, algorithms=["HS256"])
    expired = jwt.encode({**claims, "exp": datetime.now(timezone.utc) - timedelta(seconds=5)}, secret,
                         algorithm="HS256")
    foreign = jwt.encode(claims, "another-secret-key-of-enough-length!", algorithm="HS256")
    head, payload, signature = owner.access_token.split(".")
    tampered_claims = jwt.encode({**claims, "sub": str(uuid.uuid4())}, "x" * 32, algorithm="HS256").split(".")[1]
    tampered = f"{head}.{tampered_claims}.{signature}"
    bad_credentials = {
        "none": {},
        "tampered": {"Authorization": f"Bearer {tampered}"},
        "expired": {"Authorization": f"Bearer {expired}"},
        "foreign key": {"Authorization": f"Bearer {foreign}"},
        "garbage": {"Authorization": "Bearer not-a-token"},
        "bad api key": {"X-API-Key": "pk_0000000000.nope"},
    }
    checked = 0
    for rule, method in api_routes(app):
        path = fill_ids(rule, {**ids, "token": "inv_whatever", "provider": "evm"})
        for label, headers in bad_credentials.items():
            response = call(client, method, path, headers)
            assert response.status_code == 401, (method, rule.rule, label, response.get_json())
            assert response.get_json()["code"] == 401
        checked += 1
    assert checked >= 30, checked  # the walk really walked


def test_another_tenant_gets_404_on_every_route_with_ids(app, client, tenants):
    _owner, _viewer, outsider, ids = tenants
    checked = []
    for rule, method in api_routes(app):
        if not id_arguments(rule):
            continue
        response = call(client, method, fill_ids(rule, ids), outsider.headers)
        assert response.status_code == 404, (method, rule.rule, response.get_json())
        checked.append(f"{method} {rule.rule}")
    assert len(checked) >= 20, checked


def reads_with_post(app, rule, method) -> bool:
    """A POST that only reads (a knowledge base query): its view's permission says so."""
    view_class = getattr(app.view_functions[rule.endpoint], "view_class", None)
    permission = getattr(view_class, "permissions", {}).get(method.lower(), "")
    return isinstance(permission, str) and permission.endswith(".read")


def test_a_viewer_gets_403_on_every_write_with_ids(app, client, tenants):
    _owner, viewer, _outsider, ids = tenants
    checked = []
    for rule, method in api_routes(app):
        if not id_arguments(rule) or method not in WRITE_METHODS or reads_with_post(app, rule, method):
            continue
        response = call(client, method, fill_ids(rule, ids), viewer.headers)
        assert response.status_code == 403, (method, rule.rule, response.get_json())
        checked.append(f"{method} {rule.rule}")
    assert len(checked) >= 15, checked


def test_the_owner_is_not_refused_by_the_walk_itself(app, client, tenants):
    """The same requests as the owner get past authentication and tenancy (so the 401/403/404 above are real)."""
    owner, _viewer, _outsider, ids = tenants
    for rule, method in api_routes(app):
        if not id_arguments(rule) or method in WRITE_METHODS:
            continue
        response = call(client, method, fill_ids(rule, ids), owner.headers)
        assert response.status_code == 200, (method, rule.rule, response.get_json())


def test_scoped_queries_see_only_the_callers_workspace(app, client, database):
    from privex.models import Chatbot
    from privex.tenancy.context import get_scoped_or_404, scoped

    alice, bob = sign_up(client, "alice"), sign_up(client, "bob")
    mine = Chatbot(workspace_id=uuid.UUID(alice.workspace_id), name="mine")
    theirs = Chatbot(workspace_id=uuid.UUID(bob.workspace_id), name="theirs")
    database.session.add_all([mine, theirs])
    database.session.commit()
    with app.test_request_context(headers=alice.headers):
        assert [bot.name for bot in database.session.scalars(scoped(Chatbot))] == ["mine"]
        assert get_scoped_or_404(Chatbot, mine.id) is mine
        with pytest.raises(NotFound):  # another tenant's row is not found, never forbidden
            get_scoped_or_404(Chatbot, theirs.id)
    with app.test_request_context(headers={"Authorization": "Bearer nope"}):
        with pytest.raises(NotAuthenticated):
            database.session.scalars(scoped(Chatbot)).all()


def everything_in(value) -> set[str]:
    """Every string anywhere in a JSON value (keys and values)."""
    found, pending = set(), [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            found.update(str(key) for key in item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str):
            found.add(item)
    return found


def test_no_list_shows_another_tenants_resources(app, client, tenants):
    """Tenant B builds one of everything too; every GET route tenant A can call (lists and single resources, with
    A's own ids) answers without a trace of B: none of B's ids, names or email."""
    owner, _viewer, outsider, ids = tenants
    kb = outsider.post("/api/v1/knowledge-bases", json={"name": "b-secret-kb"}).get_json()
    document = outsider.post(f"/api/v1/knowledge-bases/{kb['id']}/documents/upload",
                             data={"file": (io.BytesIO(b"# B only\n\nThe vault code is 4242."), "b-secret.md")},
                             content_type="multipart/form-data").get_json()[0]
    credential = outsider.post("/api/v1/credentials", json={"name": "b-secret-cred", "provider": "notion",
                                                            "secret": {"token": "secret_b"}}).get_json()
    bot = outsider.post("/api/v1/chatbots", json={"name": "b-secret-bot", "knowledge_base_ids": [kb["id"]]}).get_json()
    chat = outsider.post(f"/api/v1/chatbots/{bot['id']}/test", json={"message": "vault code?"}).get_json()
    key = outsider.post(f"/api/v1/workspaces/{outsider.workspace_id}/api-keys",
                        json={"name": "b-secret-key", "permissions": ["read"]}).get_json()
    invitation = outsider.post(f"/api/v1/orgs/{outsider.organization_id}/members",
                               json={"email": "b-secret-invitee@example.com"}).get_json()["invitation"]
    draft = outsider.post("/api/v1/kb-drafts", json={"name": "b-secret-draft"}).get_json()
    bot_draft = outsider.post("/api/v1/chatbots/drafts", json={"name": "b-secret-bot-draft"}).get_json()
    secrets_of_b = {kb["id"], document["id"], credential["id"], bot["id"], bot["public_id"], chat["session_id"],
                    chat["message_id"], key["id"], key["prefix"], invitation["id"], draft["id"], bot_draft["id"],
                    outsider.user_id, outsider.organization_id, outsider.workspace_id, outsider.email,
                    "b-secret-kb", "b-secret.md", "b-secret-cred", "b-secret-bot", "b-secret-key",
                    "b-secret-invitee@example.com", "b-secret-draft", "b-secret-bot-draft"}
    owner.post(f"/api/v1/chatbots/{ids['chatbot_id']}/test", json={"message": "holidays?"})
    checked = []
    for rule, method in api_routes(app):
        if method != "GET":
            continue
        response = client.get(fill_ids(rule, {**ids, "token": "inv_whatever", "provider": "evm"}),
                              headers=owner.headers, query_string={"page_size": 100})
        assert response.status_code == 200, (rule.rule, response.get_json())
        leaked = everything_in(response.get_json()) & secrets_of_b
        assert not leaked, (rule.rule, leaked)
        checked.append(rule.rule)
    lists = [path for path in checked if not path.endswith(">")]
    assert len(lists) >= 12, lists
