"""Stored credentials through the API: encrypted at rest, never given back, audited; and the bad inputs."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from privex.models import Credential
from privex.services import credentials as service
from tests.helpers import add_member, sign_up

API = "/api/v1/credentials"
TOKEN = "secret_notion_integration_token_0042"


@pytest.fixture()
def owner(client):
    return sign_up(client, "cora")


def store(person, name="Notion", provider="notion", secret=None, expect=201):
    response = person.post(API, json={"name": name, "provider": provider, "secret": secret or {"token": TOKEN}})
    assert response.status_code == expect, response.get_json()
    return response.get_json()


def test_a_credential_is_stored_encrypted_and_never_given_back(app, owner, database):
    created = store(owner)
    assert "secret" not in created and TOKEN not in str(created)
    assert created["metadata"]["hints"] == {"token": "…0042"}  # enough to recognise it, not to use it
    assert TOKEN not in str(owner.get(f"{API}/{created['id']}").get_json())
    assert TOKEN not in str(owner.get(API).get_json())
    row = database.session.get(Credential, created["id"])
    assert TOKEN.encode() not in row.encrypted_data
    assert service.decrypt(row) == {"token": TOKEN}


def test_short_secrets_show_no_characters(owner):
    assert store(owner, secret={"api_key": "abc123"})["metadata"]["hints"] == {"api_key": "…"}


def test_list_filters_by_provider(owner):
    store(owner, "Notion", "notion")
    store(owner, "Docs", "google_docs", {"access_token": "ya29.token-value-long-enough"})
    assert [c["name"] for c in owner.get(API).get_json()] == ["Docs", "Notion"]
    assert [c["name"] for c in owner.get(f"{API}?provider=google_docs").get_json()] == ["Docs"]


def test_updates_rotation_and_use_are_in_the_audit_log(app, owner, database):
    credential = store(owner)
    renamed = owner.patch(f"{API}/{credential['id']}", json={"name": "Notion (sales)", "metadata": {"team": "sales"}})
    assert renamed.status_code == 200
    assert renamed.get_json()["metadata"] == {"team": "sales", "hints": {"token": "…0042"}}
    rotated = owner.post(f"{API}/{credential['id']}/rotate", json={"secret": {"token": "secret_rotated_token_9999"}})
    assert rotated.status_code == 200 and rotated.get_json()["metadata"]["hints"] == {"token": "…9999"}
    row = database.session.get(Credential, credential["id"])
    assert service.decrypt(row) == {"token": "secret_rotated_token_9999"}
    assert service.use(row, "ingest", document_id="d1") == {"token": "secret_rotated_token_9999"}
    database.session.commit()
    log = owner.get(f"{API}/{credential['id']}/audit-log").get_json()
    assert [entry["action"] for entry in log] == ["use", "rotate", "update", "create"]
    assert log[0]["detail"] == {"purpose": "ingest", "document_id": "d1"}
    assert log[2]["detail"] == {"fields": ["metadata_", "name"]} and log[3]["user_id"] == owner.user_id
    assert owner.get(f"{API}/{credential['id']}").get_json()["last_used_at"] is not None


def test_a_changed_encryption_key_is_reported_not_crashed(app, owner, database, monkeypatch):
    credential = database.session.get(Credential, store(owner)["id"])
    monkeypatch.setitem(app.config, "CREDENTIALS_KEYS", ["l02O35OfxUHe4n2YSCdlJPDImSxNLZiaD2SDHYLJpHI="])
    with pytest.raises(service.CredentialUnreadable, match="enter its secret again"):
        service.decrypt(credential)


def test_older_keys_still_decrypt_after_a_new_one_is_added(app, owner, database, monkeypatch):
    old, new = "l02O35OfxUHe4n2YSCdlJPDImSxNLZiaD2SDHYLJpHI=", "Udu_TByzm5ucsi1OCtZtGPpwbvidIOnbwG-BxLf0Xg0="
    monkeypatch.setitem(app.config, "CREDENTIALS_KEYS", [old])
    credential = database.session.get(Credential, store(owner)["id"])
    monkeypatch.setitem(app.config, "CREDENTIALS_KEYS", [new, old])
    assert service.decrypt(credential) == {"token": TOKEN}


@pytest.mark.parametrize("body, field", [
    ({"name": "x", "provider": "notion"}, "secret"),
    ({"name": "x", "provider": "notion", "secret": {}}, "secret"),
    ({"name": "x", "provider": "notion", "secret": "plain"}, "secret"),
    ({"name": "x", "provider": "notion", "secret": {"token": "t" * 20000}}, "secret"),
    ({"name": "x", "provider": "Not a name!", "secret": {"token": "t"}}, "provider"),
    ({"name": "", "provider": "notion", "secret": {"token": "t"}}, "name"),
    ({"name": "x", "provider": "notion", "credential_type": "magic", "secret": {"token": "t"}}, "credential_type"),
    ({"name": "x", "provider": "notion", "secret": {"token": "t"}, "metadata": {"hints": {}}}, "metadata"),
])
def test_bad_credentials_are_refused_naming_the_field(owner, body, field):
    response = owner.post(API, json=body)
    assert response.status_code == 422
    assert field in response.get_json()["errors"]


def test_names_are_unique_in_a_workspace(owner):
    first = store(owner, "Notion")
    store(owner, "Notion", expect=409)
    second = store(owner, "Other")
    assert owner.patch(f"{API}/{second['id']}", json={"name": "Notion"}).status_code == 409
    assert owner.patch(f"{API}/{first['id']}", json={"name": "Notion"}).status_code == 200


def test_a_viewer_sees_that_credentials_exist_but_cannot_change_them(client, owner):
    credential = store(owner)
    viewer = add_member(owner, sign_up(client, "vera"), org_role="member", workspace_role="viewer")
    assert [c["id"] for c in viewer.get(API).get_json()] == [credential["id"]]
    assert viewer.post(API, json={"name": "x", "provider": "notion", "secret": {"token": "t"}}).status_code == 403
    assert viewer.post(f"{API}/{credential['id']}/rotate", json={"secret": {"token": "t"}}).status_code == 403
    assert viewer.delete(f"{API}/{credential['id']}").status_code == 403


def test_deleting_a_credential_deletes_its_audit_log(owner, database):
    credential = store(owner)
    assert owner.delete(f"{API}/{credential['id']}").status_code == 204
    assert owner.get(f"{API}/{credential['id']}").status_code == 404
    assert database.session.scalar(sa.text("select count(*) from credential_audit_log where credential_id = :id"),
                                   {"id": credential["id"]}) == 0
