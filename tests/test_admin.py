"""The back office at /admin: superusers only, a view per model, and no secret ever shown."""

from __future__ import annotations

import pytest

from privex.auth.passwords import hash_password
from privex.extensions import db
from privex.models import APIKey, AuthIdentity, Credential, Invitation, Organization, User, Workspace

PASSWORD = "Corr3ct-Horse!"


def make_user(email: str, superuser: bool = False) -> User:
    user = User(username=email.split("@")[0], is_superuser=superuser)
    user.identities.append(AuthIdentity(provider="email", provider_id=email, password_hash=hash_password(PASSWORD)))
    db.session.add(user)
    db.session.commit()
    return user


def sign_in(client, email: str, password: str = PASSWORD):
    return client.post("/login", data={"email": email, "password": password})


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get("/admin/organization/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/admin/organization/"


def test_signed_in_non_superuser_is_refused(client):
    make_user("member@example.com")
    assert sign_in(client, "member@example.com").status_code == 302
    assert client.get("/admin/").status_code == 403
    assert client.get("/admin/user/").status_code == 403
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
    assert response.headers["Location"] == "/"


def test_superuser_sees_a_view_per_model(app, client):
    make_user("root@example.com", superuser=True)
    sign_in(client, "root@example.com")
    index = client.get("/admin/")
    assert index.status_code == 200
    endpoints = {view.endpoint for view in app.extensions["admin"][0]._views if hasattr(view, "model")}
    expected = {mapper.class_.__name__.lower() for mapper in db.Model.registry.mappers}
    assert endpoints == expected
    for endpoint in sorted(endpoints):
        assert client.get(f"/admin/{endpoint}/").status_code == 200, endpoint
        assert client.get(f"/admin/{endpoint}/new/").status_code == 200, endpoint


@pytest.fixture()
def secrets_everywhere():
    owner = make_user("owner@example.com")
    organization = Organization(name="Acme")
    workspace = Workspace(name="Main", organization=organization)
    db.session.add_all([organization, workspace])
    db.session.flush()
    db.session.add_all([
        Credential(workspace_id=workspace.id, name="notion", provider="notion",
                   encrypted_data=b"gAAAAA-ENCRYPTED-SECRET-BLOB"),
        APIKey(workspace_id=workspace.id, name="ci", prefix="pk_live_ab", key_hash="KEYHASH-SHOULD-NOT-SHOW"),
        Invitation(organization_id=organization.id, email="new@example.com", token_hash="TOKENHASH-HIDDEN",
                   expires_at=db.func.now()),
    ])
    db.session.commit()
    return owner


def test_secrets_are_never_shown(app, client, secrets_everywhere):
    make_user("root@example.com", superuser=True)
    sign_in(client, "root@example.com")
    password_hash = secrets_everywhere.identities[0].password_hash
    for endpoint in ("authidentity", "credential", "apikey", "invitation", "user"):
        listing = client.get(f"/admin/{endpoint}/").get_data(as_text=True)
        model = app.extensions["admin"][0]._views
        for text in (password_hash, "ENCRYPTED-SECRET", "KEYHASH-SHOULD-NOT-SHOW", "TOKENHASH-HIDDEN"):
            assert text not in listing, (endpoint, text)
        for view in model:
            if getattr(view, "endpoint", None) == endpoint:
                row = db.session.scalars(db.select(view.model)).first()
                for page in ("details", "edit"):
                    html = client.get(f"/admin/{endpoint}/{page}/?id={row.id}").get_data(as_text=True)
                    for text in (password_hash, "ENCRYPTED-SECRET", "KEYHASH-SHOULD-NOT-SHOW", "TOKENHASH-HIDDEN",
                                 "password_hash", "encrypted_data", "key_hash", "token_hash"):
                        assert text not in html, (endpoint, page, text)


def test_repeated_failed_sign_ins_are_slowed_down(client):
    make_user("root@example.com", superuser=True)
    for _ in range(10):
        assert sign_in(client, "root@example.com", "Wrong-passw0rd!").status_code == 401
    response = sign_in(client, "root@example.com")
    assert response.status_code == 429 and int(response.headers["Retry-After"]) > 0
