"""The back office at /admin: superusers only, a view per model, writes through the same services as the API (a bad
setting is refused beside its field, never saved, never a database error), deletes that take vectors and files
along, re-ingesting documents, readable lists, and no secret ever shown."""

from __future__ import annotations

import json
import re
import uuid
from html import unescape
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import rolled_back

from privex import models
from privex.auth.passwords import hash_password
from privex.clock import now
from privex.extensions import db
from privex.models import (APIKey, AuthIdentity, Chatbot, Chunk, Credential, Document, Invitation, KnowledgeBase,
                           Organization, OrganizationMember, User, Workspace)
from tests.helpers import sign_up
from tests.test_chatbots_api import kb, make_bot  # noqa: F401 (fixture)

PASSWORD = "Corr3ct-Horse!"
API = "/api/v1"
# What a page must never show: a database error, its SQL, or a server error.
DATABASE_TALK = ("psycopg", "NotNullViolation", "IntegrityError", "INSERT INTO", "UPDATE ", "Traceback",
                 "Internal Server Error")


def make_user(email: str, superuser: bool = False) -> User:
    user = User(username=email.split("@")[0], is_superuser=superuser)
    user.identities.append(AuthIdentity(provider="email", provider_id=email, password_hash=hash_password(PASSWORD)))
    db.session.add(user)
    db.session.commit()
    return user


def sign_in(client, email: str, password: str = PASSWORD):
    return client.post("/login", data={"email": email, "password": password})


def page(response) -> str:
    """The page's HTML, checked for server and database errors."""
    html = response.get_data(as_text=True)
    assert response.status_code < 500, html
    for text in DATABASE_TALK:
        assert text not in html, text
    return html


def field_errors(html: str, field: str) -> list[str]:
    """The messages Flask-Admin shows under the form field ``field`` (its invalid-feedback list)."""
    match = re.search(rf'id="{field}"[^>]*>.*?<div class="invalid-feedback">(.*?)</div>', html, re.S)
    return [unescape(re.sub(r"\s+", " ", item).strip())
            for item in re.findall(r"<li>(.*?)</li>", match.group(1), re.S)] if match else []


def table(html: str) -> str:
    """The list of rows on a list page (not the navigation, not the filters)."""
    return re.search(r'<table class="table table-(?:striped|hover).*?</table>', html, re.S).group(0)


def flashed(html: str) -> str:
    alerts = re.findall(r'<div class="alert[^"]*"[^>]*>(.*?)</div>', html, re.S)
    return " ".join(unescape(re.sub(r"\s+", " ", alert)) for alert in alerts)


@pytest.fixture()
def operator(client):
    user = make_user("root@example.com", superuser=True)
    assert sign_in(client, "root@example.com").status_code == 302
    return user


@pytest.fixture()
def owner(client):
    return sign_up(client, "olga")


def bot_form(bot: Chatbot, settings, **changes) -> dict:
    return {"name": bot.name, "description": bot.description or "", "status": bot.status,
            "config": json.dumps(settings), "knowledge_bases": [str(kb.id) for kb in bot.knowledge_bases],
            **changes}


# -- who may come in ---------------------------------------------------------------------------------------------

def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get("/admin/organization/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/admin/organization/"


def test_signed_in_non_superuser_is_refused(client):
    make_user("member@example.com")
    assert sign_in(client, "member@example.com").status_code == 302
    assert client.get("/admin/").status_code == 403
    assert client.get("/admin/user/").status_code == 403
    assert client.get("/admin/chatbot/new/").status_code == 403
    assert client.post("/admin/user/delete/", data={"id": "x"}).status_code == 403


def test_wrong_password_signs_nobody_in(client):
    make_user("root@example.com", superuser=True)
    response = sign_in(client, "root@example.com", "wrong-Passw0rd!")
    assert response.status_code == 401
    assert "Wrong email or password." in response.get_data(as_text=True)
    assert client.get("/admin/").status_code == 302


def test_sign_in_redirects_only_within_the_site(client):
    make_user("root@example.com", superuser=True)
    response = client.post("/login?next=https://evil.example/", data={"email": "root@example.com",
                                                                     "password": PASSWORD})
    assert response.headers["Location"] == "/app"


def test_signing_in_records_the_last_login_and_the_admin_offers_sign_out(client, operator):
    assert db.session.get(User, operator.id).last_login_at is not None
    html = page(client.get("/admin/"))
    form = re.search(r'<form[^>]*action="/logout"[^>]*>(.*?)</form>', html, re.S)
    assert form and 'method="post"' in form.group(0) and 'name="csrf_token"' in form.group(1)
    assert "root@example.com" in html
    assert client.post("/logout").status_code == 302
    assert client.get("/admin/").status_code == 302


def test_signing_out_needs_the_csrf_token(make_app):
    guarded = make_app(WTF_CSRF_ENABLED=True)
    with rolled_back(guarded):
        make_user("root@example.com", superuser=True)
        client = guarded.test_client()
        login = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login).group(1)
        assert client.post("/login", data={"email": "root@example.com", "password": PASSWORD,
                                           "csrf_token": token}).status_code == 302
        html = client.get("/admin/").get_data(as_text=True)
        assert client.post("/logout").status_code == 400  # another site's form
        assert client.get("/admin/").status_code == 200
        token = re.search(r'action="/logout".*?name="csrf_token" value="([^"]+)"', html, re.S).group(1)
        assert client.post("/logout", data={"csrf_token": token}).status_code == 302
        assert client.get("/admin/").status_code == 302


def test_repeated_failed_sign_ins_are_slowed_down(client):
    make_user("root@example.com", superuser=True)
    for _ in range(10):
        assert sign_in(client, "root@example.com", "Wrong-passw0rd!").status_code == 401
    response = sign_in(client, "root@example.com")
    assert response.status_code == 429 and int(response.headers["Retry-After"]) > 0


# -- chatbots through the service --------------------------------------------------------------------------------

def test_a_bad_setting_is_refused_beside_the_config_field_and_the_bot_still_answers(
        client, owner, kb, operator):  # noqa: F811
    created = make_bot(owner, kb)
    bot = db.session.get(Chatbot, created["id"])
    config = {**bot.config, "retrieval": {**bot.config["retrieval"], "top_k": "lots"}}
    response = client.post(f"/admin/chatbot/edit/?id={bot.id}", data=bot_form(bot, config))
    html = page(response)
    assert response.status_code == 200 and "successfully saved" not in html
    assert field_errors(html, "config") == ["retrieval.top_k: Not a valid integer."]
    assert "Nothing was saved" in flashed(html)
    assert '"lots"' in unescape(html)  # the operator's text stays in the box to be corrected
    db.session.expire_all()
    assert db.session.get(Chatbot, bot.id).config["retrieval"]["top_k"] == 5
    answer = owner.post(f"{API}/chatbots/{bot.id}/test", json={"message": "How many days of paid holiday?"})
    assert answer.status_code == 200 and "twenty-five days" in answer.get_json()["answer"]


def test_every_kind_of_refusal_lands_next_to_its_field(client, owner, kb, operator):  # noqa: F811
    bot = db.session.get(Chatbot, make_bot(owner, kb)["id"])
    cases = [
        (bot_form(bot, bot.config, name=""), "name", "give a name of 1 to 120 characters"),
        (bot_form(bot, bot.config, config="{not json"), "config", "not valid JSON"),
        (bot_form(bot, bot.config, config="[1, 2]"), "config", "must be a JSON object"),
        (bot_form(bot, {"provider": "nope"}), "config", "provider: "),
        (bot_form(bot, {"allowed_origins": ["ftp://x"]}), "config", "allowed_origins.0: an origin like"),
        (bot_form(bot, {"max_answer_tokens": 5000}), "config", "max_answer_tokens: must be smaller than"),
        (bot_form(bot, bot.config, name="bad\x00name"), "name", "NUL"),
        (bot_form(bot, {"welcome_message": "hi\u0000"}), "config", "NUL"),
    ]
    for data, field, expected in cases:
        html = page(client.post(f"/admin/chatbot/edit/?id={bot.id}", data=data))
        assert any(expected in message for message in field_errors(html, field)), (data, field_errors(html, field))
    db.session.expire_all()
    assert db.session.get(Chatbot, bot.id).name == "Helper"


def test_a_knowledge_base_of_another_workspace_cannot_be_attached(client, owner, kb, operator):  # noqa: F811
    bot = db.session.get(Chatbot, make_bot(owner)["id"])
    stranger = sign_up(client, "stranger")
    theirs = stranger.post(f"{API}/knowledge-bases", json={"name": "Theirs"}).get_json()
    html = page(client.post(f"/admin/chatbot/edit/?id={bot.id}",
                            data=bot_form(bot, bot.config, knowledge_bases=[theirs["id"]])))
    assert field_errors(html, "knowledge_bases") == [
        "only knowledge bases of the chatbot's own workspace can be attached"]


def test_a_chatbot_is_created_and_deleted_through_the_service(client, owner, operator):
    html = page(client.post("/admin/chatbot/new/", data={"workspace": owner.workspace_id, "name": "",
                                                         "status": "active", "config": ""}))
    assert field_errors(html, "name") == ["give a name of 1 to 120 characters"]
    assert page(client.post("/admin/chatbot/new/", data={"name": "Orphan", "status": "active", "config": "{}"}))
    assert db.session.scalar(sa.select(Chatbot).where(Chatbot.name == "Orphan")) is None
    response = client.post("/admin/chatbot/new/", data={"workspace": owner.workspace_id, "name": "Concierge",
                                                        "status": "active", "config": '{"citations": false}'})
    assert response.status_code == 302, page(response)
    bot = db.session.scalar(sa.select(Chatbot).where(Chatbot.name == "Concierge"))
    assert bot.public_id.startswith("bot_") and bot.deployed_at is not None and bot.created_by_id is not None
    assert bot.config["citations"] is False and bot.config["retrieval"]["top_k"] == 5  # defaults filled in
    details = unescape(page(client.get(f"/admin/chatbot/details/?id={bot.id}")))
    assert '<pre class="privex-json" tabindex="0">' in details and '"top_k": 5' in details
    assert "Olga's organization / Default" in details and "root@example.com" in table(details)
    assert client.post("/admin/chatbot/delete/", data={"id": str(bot.id)}).status_code == 302
    assert db.session.get(Chatbot, bot.id) is None


def test_the_plan_limit_holds_in_the_back_office(client, owner, operator):
    for number in range(5):
        make_bot(owner)
    html = page(client.post("/admin/chatbot/new/", data={"workspace": owner.workspace_id, "name": "Sixth",
                                                         "status": "active", "config": "{}"}))
    assert "free plan allows 5 chatbots" in flashed(html)


# -- knowledge through the service -------------------------------------------------------------------------------

def test_a_knowledge_base_is_created_through_the_service(client, owner, operator):
    form = {"workspace": owner.workspace_id, "name": "Policies", "description": "", "vector_store": "pgvector",
            "embedding_model": "all-MiniLM-L6-v2", "chunking_strategy": "sentence",
            "chunking_config": '{"chunk_size": 256}', "retrieval_config": ""}
    assert client.post("/admin/knowledgebase/new/", data=form).status_code == 302
    created = db.session.scalar(sa.select(KnowledgeBase).where(KnowledgeBase.name == "Policies"))
    assert created.embedding_dim == 384 and created.chunking_config == {"chunk_size": 256}
    html = page(client.post("/admin/knowledgebase/new/", data=form))
    assert field_errors(html, "name") == ["already used by another knowledge base of this workspace"]
    html = page(client.post("/admin/knowledgebase/new/", data={**form, "name": "Other",
                                                              "chunking_config": '{"chunk_size": "big"}'}))
    assert field_errors(html, "chunking_config")
    html = page(client.post("/admin/knowledgebase/new/", data={**form, "name": "Other", "workspace": ""}))
    assert field_errors(html, "workspace")
    html = page(client.post("/admin/knowledgebase/new/", data={**form, "name": "Other", "vector_store": "qdrant"}))
    assert field_errors(html, "vector_store")
    new_page = page(client.get("/admin/knowledgebase/new/"))
    assert '<option selected value="pgvector">' in new_page or 'value="pgvector" selected' in new_page


def test_a_knowledge_base_deleted_in_the_admin_loses_its_chunks_and_files(client, owner, kb, operator):  # noqa: F811
    document = db.session.scalar(sa.select(Document).where(Document.knowledge_base_id == kb["id"]))
    folder = Path(document.storage_path).parent
    assert document.status == "indexed" and folder.exists()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Chunk).where(Chunk.knowledge_base_id == kb["id"]))
    response = client.post("/admin/knowledgebase/delete/", data={"id": kb["id"]})
    assert response.status_code == 302
    assert "successfully deleted" in page(client.get(response.headers["Location"]))
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Chunk).where(
        Chunk.knowledge_base_id == kb["id"])) == 0
    assert db.session.get(KnowledgeBase, kb["id"]) is None and not folder.exists()


def test_re_ingesting_documents_queues_their_ingestion(client, owner, kb, operator):  # noqa: F811
    document = db.session.scalar(sa.select(Document).where(Document.knowledge_base_id == kb["id"]))
    db.session.execute(sa.delete(Chunk).where(Chunk.document_id == document.id))
    document.status, document.chunks_done = "failed", 0
    db.session.commit()
    response = client.post("/admin/document/action/", data={"action": "reingest", "rowid": [str(document.id),
                                                                                           "not-an-id"]})
    assert response.status_code == 302
    assert "1 document queued for ingestion." in page(client.get(response.headers["Location"]))
    db.session.expire_all()
    document = db.session.get(Document, document.id)
    assert document.status == "indexed" and document.chunks_done > 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Chunk).where(Chunk.document_id == document.id))


def test_a_document_is_renamed_labelled_and_deleted_through_the_service(client, owner, kb, operator):  # noqa: F811
    document = db.session.scalar(sa.select(Document).where(Document.knowledge_base_id == kb["id"]))
    html = page(client.post(f"/admin/document/edit/?id={document.id}", data={"name": " ", "metadata_": "{}"}))
    assert field_errors(html, "name") == ["give a name of 1 to 512 characters"]
    response = client.post(f"/admin/document/edit/?id={document.id}",
                           data={"name": "Handbook 2026", "metadata_": '{"team": "hr"}'})
    assert response.status_code == 302
    db.session.expire_all()
    assert (db.session.get(Document, document.id).name, db.session.get(Document, document.id).metadata_) == (
        "Handbook 2026", {"team": "hr"})
    assert client.post("/admin/document/delete/", data={"id": str(document.id)}).status_code == 302
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Chunk).where(
        Chunk.document_id == document.id)) == 0


# -- tenants and people ------------------------------------------------------------------------------------------

def test_an_organization_is_created_with_an_owner_and_keeps_one(client, owner, operator):
    person = db.session.get(User, owner.user_id)
    html = page(client.post("/admin/organization/new/", data={"name": "", "owner": str(person.id),
                                                              "billing_email": "", "subscription_tier": "free"}))
    assert field_errors(html, "name") == ["give a name of 1 to 120 characters"]
    html = page(client.post("/admin/organization/new/", data={"name": "Acme", "owner": str(person.id),
                                                              "billing_email": "nope", "subscription_tier": "pro"}))
    assert field_errors(html, "billing_email") == ["not an email address"]
    assert db.session.scalar(sa.select(Organization).where(Organization.name == "Acme")) is None
    response = client.post("/admin/organization/new/", data={"name": "Acme", "owner": str(person.id),
                                                             "billing_email": "", "subscription_tier": "pro"})
    assert response.status_code == 302, page(response)
    acme = db.session.scalar(sa.select(Organization).where(Organization.name == "Acme"))
    assert acme.subscription_tier == "pro" and [w.name for w in acme.workspaces] == ["Default"]
    [member] = acme.members
    assert (member.user_id, member.role) == (person.id, "owner")
    members = page(client.get("/admin/organizationmember/"))
    assert "olga@example.com" in members and "&lt;User" not in members and "<User" not in members
    html = page(client.post(f"/admin/organizationmember/edit/?id={member.id}", data={"role": "member"}))
    assert "last owner" in flashed(html)
    response = client.post("/admin/organizationmember/delete/", data={"id": str(member.id)})
    assert "last owner" in page(client.get(response.headers["Location"]))
    [workspace] = acme.workspaces
    response = client.post("/admin/workspace/delete/", data={"id": str(workspace.id)})
    assert "at least one workspace" in page(client.get(response.headers["Location"]))
    assert client.post("/admin/organization/delete/", data={"id": str(acme.id)}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Organization, acme.id) is None


def test_deleting_an_organization_takes_its_vectors_and_files(client, owner, kb, operator):  # noqa: F811
    folder = Path(db.session.scalar(sa.select(Document.storage_path).where(Document.knowledge_base_id == kb["id"])))
    assert client.post("/admin/organization/delete/", data={"id": owner.organization_id}).status_code == 302
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Chunk).where(
        Chunk.knowledge_base_id == kb["id"])) == 0
    assert not folder.exists()


def test_workspaces_and_their_members(client, owner, operator):
    person = db.session.get(User, owner.user_id)
    html = page(client.post("/admin/workspace/new/", data={"organization": owner.organization_id, "name": "Default",
                                                           "owner": str(person.id)}))
    assert field_errors(html, "name") == ["already used by another workspace of this organization"]
    response = client.post("/admin/workspace/new/", data={"organization": owner.organization_id, "name": "Sales",
                                                          "description": "", "owner": str(person.id)})
    assert response.status_code == 302, page(response)
    sales = db.session.scalar(sa.select(Workspace).where(Workspace.name == "Sales"))
    newcomer = make_user("nina@example.com")
    response = client.post("/admin/workspacemember/new/", data={"workspace": str(sales.id),
                                                                "user": str(newcomer.id), "role": "editor"})
    assert response.status_code == 302, page(response)
    assert db.session.scalar(sa.select(OrganizationMember.role).where(  # she joins the organization too
        OrganizationMember.user_id == newcomer.id)) == "member"
    html = page(client.post("/admin/workspacemember/new/", data={"workspace": str(sales.id),
                                                                 "user": str(newcomer.id), "role": "viewer"}))
    assert "already a member" in flashed(html)
    html = page(client.post("/admin/workspacemember/new/", data={"workspace": str(sales.id),
                                                                 "user": str(newcomer.id), "role": "boss"}))
    assert field_errors(html, "role") == ["Not a valid choice."]
    response = client.post(f"/admin/workspace/edit/?id={sales.id}", data={"name": "Sales EU", "description": "x"})
    assert response.status_code == 302
    assert client.post("/admin/workspace/delete/", data={"id": str(sales.id)}).status_code == 302
    assert db.session.scalar(sa.select(Workspace).where(Workspace.organization_id == owner.organization_id,
                                                        Workspace.name == "Sales EU")) is None


def test_users_are_found_by_email_and_deactivated_not_deleted(client, owner, operator):
    person = db.session.get(User, owner.user_id)
    listing = table(page(client.get("/admin/user/?search=olga@example")))
    assert "olga@example.com" in listing and "root@example.com" not in listing
    assert page(client.get("/admin/user/?search=%00")) is not None
    html = page(client.post(f"/admin/user/edit/?id={operator.id}", data={"username": "root", "display_name": ""}))
    assert field_errors(html, "is_active") == ["you cannot deactivate yourself"]
    html = page(client.post(f"/admin/user/edit/?id={person.id}", data={"username": "root", "is_active": "y"}))
    assert field_errors(html, "username") == ["already taken"]
    response = client.post(f"/admin/user/edit/?id={person.id}", data={"username": "olga", "display_name": "Olga"})
    assert response.status_code == 302
    login = client.post(f"{API}/auth/email/login", json={"email": owner.email, "password": "Sup3r-secret!"})
    assert login.status_code == 401
    assert owner.get(f"{API}/auth/me").status_code == 401  # signed out everywhere
    assert "/admin/user/delete/" not in page(client.get("/admin/user/"))


def test_lists_are_searched_and_filtered(client, owner, kb, operator):  # noqa: F811
    make_bot(owner, kb)
    assert "Handbook" in page(client.get("/admin/knowledgebase/?search=hand"))
    assert "Handbook" not in page(client.get("/admin/knowledgebase/?search=zzz"))
    organizations = page(client.get("/admin/organization/"))
    assert "Subscription" in organizations or "Plan" in organizations
    view = next(v for v in client.application.extensions["admin"][0]._views
                if getattr(v, "endpoint", None) == "document")
    names = [name for name, _ in view._filter_groups.items()] if hasattr(view, "_filter_groups") else []
    assert any("Workspace" in str(name) for name in names), names
    for url in ("/admin/chatbot/?search=helper", "/admin/lead/?search=ann@example.com",
                "/admin/organization/?search=olga", "/admin/document/?search=handbook"):
        assert page(client.get(url))
    assert "Helper" in page(client.get("/admin/chatbot/?search=helper"))


# -- every page, and no secret on any -----------------------------------------------------------------------------

SECRETS = ("ENCRYPTED-SECRET", "KEYHASH-SHOULD-NOT-SHOW", "TOKENHASH-HIDDEN", "REFRESH-HASH-HIDDEN")
SECRET_NAMES = ("password_hash", "encrypted_data", "key_hash", "token_hash")


@pytest.fixture()
def everything(client, owner, kb):  # noqa: F811
    """One row of every model: through the API where it can make them, directly for the rest."""
    bot = make_bot(owner, kb)
    answer = owner.post(f"{API}/chatbots/{bot['id']}/test", json={"message": "How many days of paid holiday?"})
    assert answer.status_code == 200
    credential = owner.post(f"{API}/credentials", json={"name": "Notion", "provider": "notion",
                                                        "secret": {"token": "secret_notion_token_0042"}})
    assert credential.status_code == 201
    evaluation = owner.post(f"{API}/knowledge-bases/{kb['id']}/evaluations", json={"questions": [
        {"question": "How many days of paid holiday?", "relevant_passages": ["holiday"]}]})
    assert evaluation.status_code == 202, evaluation.get_json()
    flow = owner.post(f"{API}/chatflows", json={"name": "Published flow"}).get_json()
    assert owner.post(f"{API}/chatflows/{flow['id']}/publish", json={"note": "v1"}).status_code == 201
    workspace_id = uuid.UUID(owner.workspace_id)
    message = db.session.scalars(sa.select(models.ChatMessage).where(models.ChatMessage.role == "assistant")).first()
    session = db.session.scalars(sa.select(models.AuthSession)).first()
    db.session.add_all([
        models.Chatflow(workspace_id=workspace_id, name="Flow", nodes=[{"id": "start", "type": "start"}]),
        models.MessageFeedback(workspace_id=workspace_id, message_id=message.id, rating=1, comment="good"),
        models.Lead(workspace_id=workspace_id, chatbot_id=bot["id"], email="ann@example.com", name="Ann",
                    custom_fields={"company": "Acme"}),
        APIKey(workspace_id=workspace_id, name="ci", prefix="pk_live_ab", key_hash="KEYHASH-SHOULD-NOT-SHOW"),
        Invitation(organization_id=owner.organization_id, email="new@example.com", token_hash="TOKENHASH-HIDDEN",
                   expires_at=now() + timedelta(days=3)),
        models.RefreshToken(session_id=session.id, token_hash="REFRESH-HASH-HIDDEN",
                            expires_at=now() + timedelta(days=3)),
    ])
    row = db.session.get(Credential, credential.get_json()["id"])
    row.encrypted_data = b"gAAAAA-ENCRYPTED-SECRET-BLOB"
    db.session.commit()
    for mapper in db.Model.registry.mappers:
        assert db.session.scalar(sa.select(sa.func.count()).select_from(mapper.class_)), mapper.class_.__name__
    return db.session.get(AuthIdentity, db.session.scalar(sa.select(AuthIdentity.id).where(
        AuthIdentity.provider_id == owner.email))).password_hash


def test_every_page_of_every_view_opens_and_shows_no_secret(app, client, everything, operator):
    password_hash = everything
    views = [view for view in app.extensions["admin"][0]._views if hasattr(view, "model")]
    assert {view.endpoint for view in views} == {mapper.class_.__name__.lower() for mapper in db.Model.registry.mappers}
    visited = 0
    for view in views:
        rows = db.session.scalars(sa.select(view.model).limit(3)).all()
        urls = [f"/admin/{view.endpoint}/", f"/admin/{view.endpoint}/?search=a", f"/admin/{view.endpoint}/new/",
                f"/admin/{view.endpoint}/?sort=1&desc=1"]
        urls += [f"/admin/{view.endpoint}/{kind}/?id={row.id}" for row in rows for kind in ("details", "edit")]
        for url in urls:
            response = client.get(url, follow_redirects=True)
            html = page(response)
            assert response.status_code == 200, url
            for text in (password_hash, *SECRETS, *SECRET_NAMES, "<User ", "&lt;User "):
                assert text not in html, (url, text)
            visited += 1
        assert view.can_export is False
        searchable = [str(column) for column in view._search_fields or []] if view._search_supported else []
        assert not any(name in column for column in searchable for name in SECRET_NAMES), view.endpoint
    assert visited > 100


def test_rows_only_the_system_writes_are_read_only(app, client, everything, operator):
    read_only = {"authidentity", "authsession", "refreshtoken", "apikey", "invitation", "chatflow", "chunk",
                 "chatsession", "chatmessage", "messagefeedback", "tokenusage", "lead", "credential",
                 "credentialauditlog"}
    for view in app.extensions["admin"][0]._views:
        if getattr(view, "endpoint", None) in read_only:
            assert not (view.can_create or view.can_edit or view.can_delete), view.endpoint
            row = db.session.scalars(sa.select(view.model)).first()
            before = db.session.scalar(sa.select(sa.func.count()).select_from(view.model))
            client.post(f"/admin/{view.endpoint}/delete/", data={"id": str(row.id)})
            client.post(f"/admin/{view.endpoint}/action/", data={"action": "delete", "rowid": str(row.id)})
            client.post(f"/admin/{view.endpoint}/edit/?id={row.id}", data={"name": "changed"})
            db.session.expire_all()
            assert db.session.scalar(sa.select(sa.func.count()).select_from(view.model)) == before, view.endpoint


def test_lists_show_names_readable_json_and_short_text(client, everything, operator):
    message = db.session.scalars(sa.select(models.ChatMessage).where(models.ChatMessage.role == "assistant")).first()
    message.content = "A long answer. " * 40
    db.session.commit()
    listing = page(client.get("/admin/chatmessage/"))
    assert message.content not in listing and "A long answer. A long answer." in listing and "…" in listing
    assert message.content.strip() in page(client.get(f"/admin/chatmessage/details/?id={message.id}"))
    leads = page(client.get("/admin/lead/"))
    assert "Helper" in leads and "Olga&#39;s organization / Default" in leads  # bot and workspace by name
    details = page(client.get(f"/admin/lead/details/?id={db.session.scalars(sa.select(models.Lead)).first().id}"))
    assert '<pre class="privex-json" tabindex="0">{\n  &#34;company&#34;: &#34;Acme&#34;\n}</pre>' in details
