"""OAuth credentials that keep themselves usable: a Google Docs source stored with a refresh token gets a new access
token from Google's token endpoint (a local server speaking it) whenever the stored one is missing or expired, so a
reindex an hour later still works; a refused refresh fails the source with what to do."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs

import pytest
from werkzeug import Response

from privex.models import Credential
from privex.services import credentials
from tests.test_drafts_api import API, new_draft

DOC_ID = "1AbCdEfGhIjKlMnOpQrStUvWxYz"
GOOGLE_DOC = {
    "documentId": DOC_ID, "title": "Opening hours", "revisionId": "r1",
    "body": {"content": [
        {"paragraph": {"elements": [{"textRun": {"content": "Opening hours\n"}}],
                       "paragraphStyle": {"namedStyleType": "TITLE"}}},
        {"paragraph": {"elements": [{"textRun": {
            "content": "The workshop in Leeds opens at eight and closes at four, Monday to Thursday.\n"}}],
            "paragraphStyle": {"namedStyleType": "NORMAL_TEXT"}}},
    ]},
}
SECRET = {"refresh_token": "1//refresh-token-of-dora", "client_id": "client-123.apps.googleusercontent.com",
          "client_secret": "GOCSPX-client-secret"}


@pytest.fixture()
def owner(client):
    from tests.helpers import sign_up

    return sign_up(client, "dora")


@pytest.fixture()
def google(app, httpserver, monkeypatch):
    """Google's token endpoint and Docs API on a local server; records what each was sent."""
    monkeypatch.setitem(app.config, "ALLOW_PRIVATE_SOURCES", True)
    monkeypatch.setitem(app.config, "OAUTH_TOKEN_URLS", {"google_docs": httpserver.url_for("/token")})
    seen = {"token_forms": [], "bearers": [], "issued": 0, "token_status": 200}

    def token(request):
        seen["token_forms"].append({key: values[0] for key, values in parse_qs(request.get_data(as_text=True)).items()})
        if seen["token_status"] != 200:
            error = {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
            return Response(json.dumps(error), status=seen["token_status"], content_type="application/json")
        seen["issued"] += 1
        return Response(json.dumps({"access_token": f"ya29.issued-{seen['issued']}", "expires_in": 3599,
                                    "scope": "https://www.googleapis.com/auth/documents.readonly",
                                    "token_type": "Bearer"}), content_type="application/json")

    def document(request):
        seen["bearers"].append(request.headers.get("Authorization"))
        if request.headers.get("Authorization") != f"Bearer ya29.issued-{seen['issued']}":
            return Response(json.dumps({"error": {"code": 401, "status": "UNAUTHENTICATED"}}), status=401,
                            content_type="application/json")
        return Response(json.dumps(GOOGLE_DOC), content_type="application/json")

    httpserver.expect_request("/token", method="POST").respond_with_handler(token)
    httpserver.expect_request(f"/v1/documents/{DOC_ID}").respond_with_handler(document)
    seen["api_base"] = httpserver.url_for("")
    return seen


def google_credential(person, **secret):
    response = person.post(f"{API}/credentials", json={
        "name": "Dora's Google", "provider": "google_docs", "credential_type": "oauth2",
        "secret": {**SECRET, **secret}})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def add_google_doc(person, draft_id, credential_id, api_base):
    return person.post(f"{API}/kb-drafts/{draft_id}/documents/google-docs", json={
        "document_ids": [DOC_ID], "credential_id": credential_id, "api_base": api_base, "allow_private": True})


def test_a_google_source_with_a_refresh_token_is_indexed_and_reindexed_after_its_token_expired(
        app, owner, google, database):
    credential_id = google_credential(owner)
    draft = new_draft(owner)
    added = add_google_doc(owner, draft["id"], credential_id, google["api_base"])
    assert added.status_code == 201, added.get_json()
    # Google was asked for an access token with the stored refresh token, as its token endpoint expects.
    assert google["token_forms"] == [{"grant_type": "refresh_token", **SECRET}]

    finalized = owner.post(f"{API}/kb-drafts/{draft['id']}/finalize")
    assert finalized.status_code == 201, finalized.get_json()
    kb_id = finalized.get_json()["knowledge_base"]["id"]
    [document] = owner.get(f"{API}/knowledge-bases/{kb_id}/documents").get_json()
    assert document["status"] == "indexed", document
    assert len(google["token_forms"]) == 1  # the token issued a moment ago was still good
    hits = owner.post(f"{API}/knowledge-bases/{kb_id}/query",
                      json={"query": "when does the Leeds workshop open?"}).get_json()["hits"]
    assert "opens at eight" in hits[0]["text"]

    # An hour later the access token has expired: the reindex gets a new one and reads the document with it.
    credential = database.session.get(Credential, credential_id)
    stored = credentials.decrypt(credential)
    assert stored["access_token"] == "ya29.issued-1" and stored["access_token_expires_at"] > time.time() + 3000
    credentials.set_secret(credential, {**stored, "access_token_expires_at": int(time.time()) - 1})
    database.session.commit()
    reindexed = owner.post(f"{API}/documents/{document['id']}/reindex")
    assert reindexed.status_code in (200, 202), reindexed.get_json()
    again = owner.get(f"{API}/documents/{document['id']}").get_json()
    assert again["status"] == "indexed", again
    assert len(google["token_forms"]) == 2 and google["bearers"][-1] == "Bearer ya29.issued-2"

    # The refreshes are in the audit log, and the API still shows no secret.
    log = owner.get(f"{API}/credentials/{credential_id}/audit-log").get_json()
    assert [entry["detail"].get("reason") for entry in log if entry["action"] == "update"].count(
        "access token refreshed") == 2
    shown = owner.get(f"{API}/credentials/{credential_id}").get_json()
    assert "ya29" not in json.dumps(shown) and "refresh-token-of-dora" not in json.dumps(shown)


def test_a_refused_refresh_says_to_connect_the_account_again(app, owner, google, database):
    credential_id = google_credential(owner)
    google["token_status"] = 400
    draft = new_draft(owner)
    refused = add_google_doc(owner, draft["id"], credential_id, google["api_base"])
    assert refused.status_code == 422
    body = refused.get_json()
    assert "connect the account again" in body["message"] and "Token has been expired or revoked" in body["message"]
    assert "credential_id" in body["errors"]


def test_an_unreachable_token_endpoint_is_a_502_not_the_users_mistake(app, owner, google, database):
    credential_id = google_credential(owner)
    google["token_status"] = 503
    draft = new_draft(owner)
    answer = add_google_doc(owner, draft["id"], credential_id, google["api_base"])
    assert answer.status_code == 502 and "will try again" in answer.get_json()["message"]
    assert owner.get(f"{API}/kb-drafts/{draft['id']}").get_json()["sources"] == []


def test_a_refresh_token_without_its_client_or_a_known_endpoint_is_explained(app, owner, google, database):
    without_client = owner.post(f"{API}/credentials", json={
        "name": "Half", "provider": "google_docs", "credential_type": "oauth2",
        "secret": {"refresh_token": SECRET["refresh_token"]}}).get_json()["id"]
    draft = new_draft(owner)
    answer = add_google_doc(owner, draft["id"], without_client, google["api_base"])
    assert answer.status_code == 422 and "no client_id or client_secret" in answer.get_json()["message"]

    unknown = owner.post(f"{API}/credentials", json={
        "name": "Elsewhere", "provider": "dropbox", "credential_type": "oauth2", "secret": SECRET}).get_json()["id"]
    answer = add_google_doc(owner, draft["id"], unknown, google["api_base"])
    assert answer.status_code == 422 and "PRIVEX_OAUTH_TOKEN_URLS" in answer.get_json()["message"]
    assert google["token_forms"] == []  # nothing was sent anywhere
