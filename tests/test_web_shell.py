"""The builder's shell through the test client: signing up and in, the sign-in gate, the organization/workspace
context and its permission checks, invitations, the password change, wallet sign-in with real keys, CSRF and the
error pages. The same journeys run in a real browser in test_builder_browser.py."""

from __future__ import annotations

import base64
import re
import uuid

import pytest
from eth_account import Account
from flask import render_template_string
from wtforms import FormField, IntegerField, StringField, TextAreaField
from wtforms import Form as PlainForm

from privex.extensions import db
from privex.models import KnowledgeBase, Organization, User, Workspace
from privex.services import invitations, knowledge, registration, workspaces
from privex.services.errors import Conflict, Invalid
from privex.web import shell
from privex.web.forms import PageForm, form_status, show_errors
from conftest import rolled_back
from tests.test_wallets import cosmos_wallet, evm_sign, keplr_sign, solana_sign, solana_wallet

PASSWORD = "Sup3r-secret!"


def html(response) -> str:
    return response.get_data(as_text=True)


def error_of(page: str, field_id: str) -> str:
    """The message shown beside a field: the element its aria-describedby names."""
    match = re.search(rf'<div class="error" id="{field_id}-error">(.*?)</div>', page, re.S)
    assert match, f"no error beside {field_id}"
    assert re.search(rf'id="{field_id}"[^>]*aria-describedby="[^"]*{field_id}-error', page) or \
        re.search(rf'aria-describedby="[^"]*{field_id}-error[^"]*"[^>]*id="{field_id}"', page)
    return re.sub(r"<[^>]+>", "", match.group(1)).strip()


def sign_up(client, email: str, password: str = PASSWORD, name: str = "Ada", next_path: str | None = None):
    url = "/signup" + (f"?next={next_path}" if next_path else "")
    return client.post(url, data={"email": email, "password": password, "display_name": name})


def sign_in(client, email: str, password: str = PASSWORD):
    return client.post("/login", data={"email": email, "password": password})


def person(email: str) -> User:
    user = registration.sign_up(email, PASSWORD, email.split("@")[0].title())
    db.session.commit()
    return user


def own_workspace(user: User) -> Workspace:
    return db.session.query(Workspace).filter_by(created_by_id=user.id).one()


# -- signing up and in ---------------------------------------------------------------------------------------------

def test_sign_up_lands_on_the_first_run_guide(client):
    form = html(client.get("/signup"))
    assert "at least 8 characters, with an upper-case letter" in form  # the rule, shown before typing
    response = sign_up(client, "ada@example.com")
    assert response.status_code == 302 and response.headers["Location"] == "/app"
    home = html(client.get("/app"))
    assert "Welcome to PrivexBot" in home
    for step, link in (("Add your documents", "/knowledge"), ("Build a chatbot", "/chatbots"),
                       ("Put it on your site", "/chatbots")):
        assert step in home and f'href="{link}"' in home
    assert "Ada&#39;s organization › Default" in home  # the switcher shows where they work
    assert 'aria-current="page">Home' in home
    for area in ("/knowledge", "/chatbots", "/team"):  # every area is built: none says it is coming
        assert "Coming soon" not in html(client.get(area))


def test_sign_up_refusals_are_shown_beside_their_fields(client):
    weak = sign_up(client, "ada@example.com", password="short")
    assert weak.status_code == 422
    assert "missing: 8 characters, an upper-case letter, a digit, a symbol" in error_of(html(weak), "password")
    not_email = sign_up(client, "ada-at-example")
    assert not_email.status_code == 422 and "Invalid email address." in error_of(html(not_email), "email")
    assert sign_up(client, "ada@example.com").status_code == 302
    client.post("/logout")
    taken = sign_up(client, "ADA@example.com")
    assert taken.status_code == 409
    assert error_of(html(taken), "email") == "An account with this email already exists; sign in instead."


def test_a_wrong_password_is_said_beside_the_password_and_signs_nobody_in(client):
    person("ada@example.com")
    response = sign_in(client, "ada@example.com", "Wrong-passw0rd!")
    assert response.status_code == 401
    assert error_of(html(response), "password") == "Wrong email or password."
    assert client.get("/app").status_code == 302
    assert sign_in(client, "ada@example.com").headers["Location"] == "/app"
    assert client.get("/app").status_code == 200


def test_pages_need_a_sign_in_and_come_back_after_it(client):
    response = client.get("/knowledge?page=2")
    assert response.status_code == 302 and response.headers["Location"] == "/login?next=/knowledge?page%3D2"
    htmx = client.get("/knowledge", headers={"HX-Request": "true"})
    assert htmx.status_code == 401 and htmx.headers["HX-Redirect"] == "/login?next=/knowledge"
    person("ada@example.com")
    back = client.post("/login?next=/knowledge?page%3D2", data={"email": "ada@example.com", "password": PASSWORD})
    assert back.headers["Location"] == "/knowledge?page=2"
    assert client.get("/").headers["Location"] == "/app"  # the landing page sends a signed-in person to work


def test_the_landing_page_says_what_it_is_and_how_to_start(client):
    page = html(client.get("/"))
    assert "Chatbots that answer from your own documents" in page
    assert 'href="/signup"' in page and 'href="/login"' in page
    assert 'rel="icon" href="/static/favicon.svg"' in page
    with client.get("/favicon.ico") as icon:
        assert icon.mimetype == "image/svg+xml"
    with client.get("/static/vendor/htmx.min.js") as htmx:  # installed from the npm registry by `make install`
        assert htmx.status_code == 200 and b"htmx" in htmx.data


def test_sign_out_ends_the_session_and_its_context(client):
    sign_up(client, "ada@example.com")
    assert client.post("/logout").headers["Location"] == "/"
    assert client.get("/app").status_code == 302
    with client.session_transaction() as session:
        assert "workspace_id" not in session and "_user_id" not in session


# -- context and permissions ---------------------------------------------------------------------------------------

@pytest.fixture()
def probed(app, make_app):
    """An app with two probe pages calling the helpers every area uses, inside a rolled-back transaction."""
    application = make_app()

    @application.get("/probe/write")
    @shell.signed_in_only
    def probe_write():
        return shell.workspace_for("resources.write").name

    @application.get("/probe/kb/<kb_id>")
    @shell.signed_in_only
    def probe_kb(kb_id):
        return shell.resource_or_404(KnowledgeBase, kb_id).name

    @application.get("/probe/may")
    @shell.signed_in_only
    def probe_may():
        return render_template_string("{{ may('resources.write') }} {{ may('org.members.invite') }}")

    with rolled_back(application):
        yield application


def test_the_switcher_moves_between_organizations_and_the_permission_table_decides(probed):
    owner, viewer = person("olga@example.com"), person("vic@example.com")
    olga_workspace, vic_workspace = own_workspace(owner), own_workspace(viewer)
    olga_org = db.session.get(Organization, olga_workspace.organization_id)
    client = probed.test_client()
    sign_in(client, "vic@example.com")  # first: in one transaction every membership is equally old
    invitations.invite_or_add(olga_org, owner, "owner", "vic@example.com", "member",
                              workspace_id=olga_workspace.id, workspace_role="viewer")
    kb = knowledge.create(olga_workspace, owner.id, {"name": "Olga's handbook"})
    db.session.commit()

    home = html(client.get("/app"))
    assert f'value="{olga_org.id}/{olga_workspace.id}"' in home  # both organizations are offered
    assert client.get("/probe/write").get_data(as_text=True) == vic_workspace.name  # an admin of their own
    assert client.get(f"/probe/kb/{kb.id}").status_code == 404  # Olga's, not in the current workspace

    switched = client.post("/context", data={"context": f"{olga_org.id}/{olga_workspace.id}", "next": "/knowledge/5"})
    assert switched.headers["Location"] == "/knowledge"  # the same area, not a resource of the old workspace
    assert "Olga&#39;s organization" in html(client.get("/app"))
    assert client.get(f"/probe/kb/{kb.id}").get_data(as_text=True) == "Olga's handbook"
    assert client.get("/probe/kb/not-a-uuid").status_code == 404
    refused = client.get("/probe/write")
    assert refused.status_code == 403 and "You may not do that here" in html(refused)
    assert client.get("/probe/may").get_data(as_text=True) == "False False"
    assert "an editor or admin of this workspace builds" in html(client.get("/app"))

    # Another organization's workspace, an organization they are not in, or garbage: the 404 page / 422.
    stranger = own_workspace(person("sam@example.com"))
    assert client.post("/context", data={"context": f"{olga_org.id}/{stranger.id}"}).status_code == 404
    assert client.post("/context", data={"context": f"{stranger.organization_id}/"}).status_code == 404
    assert client.post("/context", data={"context": "nonsense"}).status_code == 422
    assert "Olga&#39;s organization" in html(client.get("/app"))  # nothing changed

    # Removed from the workspace: the next request falls back to one they still have.
    workspaces.remove_member(olga_workspace, viewer.id)
    assert client.get(f"/probe/kb/{kb.id}").status_code == 409
    assert client.get("/probe/write").status_code == 409
    assert "You are not in a workspace here yet" in html(client.get("/app"))


def test_an_organization_admin_may_write_everywhere(probed):
    owner = person("olga@example.com")
    client = probed.test_client()
    sign_in(client, "olga@example.com")
    assert client.get("/probe/may").get_data(as_text=True) == "True True"
    assert client.get("/probe/write").status_code == 200


# -- invitations ---------------------------------------------------------------------------------------------------

def test_an_invitation_link_signs_up_then_accepts(client):
    owner = person("olga@example.com")
    workspace = own_workspace(owner)
    organization = db.session.get(Organization, workspace.organization_id)
    _, _, token = invitations.invite_or_add(organization, owner, "owner", "new@example.com", "member",
                                            workspace_id=workspace.id, workspace_role="editor")
    page = html(client.get(f"/invitations/{token}"))
    assert f'href="/signup?next=/invitations/{token}"' in page and f'href="/login?next=/invitations/{token}"' in page
    assert sign_up(client, "new@example.com", next_path=f"/invitations/{token}").headers["Location"] == \
        f"/invitations/{token}"
    assert "Accept the invitation" in html(client.get(f"/invitations/{token}"))
    accepted = client.post(f"/invitations/{token}")
    assert accepted.status_code == 302 and accepted.headers["Location"] == "/app"
    home = html(client.get("/app"))
    assert "You joined Olga&#39;s organization." in home
    assert re.search(rf'value="{organization.id}/{workspace.id}"\s+selected', home)  # working there now
    again = client.post(f"/invitations/{token}")
    assert again.status_code == 409 and "This invitation has already been accepted." in html(again)


def test_an_invitation_for_someone_else_is_refused_on_the_page(client):
    owner = person("olga@example.com")
    organization = db.session.get(Organization, own_workspace(owner).organization_id)
    _, _, token = invitations.invite_or_add(organization, owner, "owner", "meant@example.com", "member")
    sign_up(client, "other@example.com")
    refused = client.post(f"/invitations/{token}")
    assert refused.status_code == 403 and "This invitation was sent to another email address" in html(refused)
    assert client.post("/invitations/inv_nope").status_code == 404


# -- account -------------------------------------------------------------------------------------------------------

def test_changing_the_password_uses_the_api_rules_and_signs_other_browsers_out(app, client):
    sign_up(client, "ada@example.com")
    elsewhere = app.test_client()
    sign_in(elsewhere, "ada@example.com")
    assert elsewhere.get("/app").status_code == 200

    wrong = client.post("/account/password", data={"current_password": "Nope-1234!", "new_password": "N3w-secret!",
                                                    "repeat_password": "N3w-secret!"})
    assert wrong.status_code == 401 and error_of(html(wrong), "current_password") == "Wrong password."
    weak = client.post("/account/password", data={"current_password": PASSWORD, "new_password": "weakweak",
                                                   "repeat_password": "weakweak"})
    assert weak.status_code == 422 and "missing: an upper-case letter, a digit, a symbol" in \
        error_of(html(weak), "new_password")
    differ = client.post("/account/password", data={"current_password": PASSWORD, "new_password": "N3w-secret!",
                                                     "repeat_password": "N3w-secret?"})
    assert differ.status_code == 422 and error_of(html(differ), "repeat_password") == "The two new passwords differ."

    done = client.post("/account/password", data={"current_password": PASSWORD, "new_password": "N3w-secret!",
                                                   "repeat_password": "N3w-secret!"})
    assert done.headers["Location"] == "/account"
    assert "Your password was changed." in html(client.get("/account"))  # this browser stays signed in
    assert elsewhere.get("/app").status_code == 302  # the other one is signed out
    assert sign_in(elsewhere, "ada@example.com", "N3w-secret!").status_code == 302


# -- wallets (real keys; the browser journeys are in test_builder_browser.py) -------------------------------------

def wallet_sign_in(client, provider: str, address: str, sign, extra=None, url=None):
    challenge = client.post(f"/login/wallet/{provider}/challenge", json={"address": address, **(extra or {})})
    assert challenge.status_code == 200, challenge.get_json()
    body = challenge.get_json()
    proof = {"nonce": body["nonce"], "message": body["message"], "address": address, **sign(body["message"])}
    return client.post(url or f"/login/wallet/{provider}/verify", json=proof)


def test_wallets_sign_in_and_link_with_real_signatures(client):
    account = Account.create()
    evm = wallet_sign_in(client, "evm", account.address, lambda m: {"signature": evm_sign(account.key, m)},
                         {"chain_id": "0x1"})
    assert evm.status_code == 200 and evm.get_json() == {"redirect": "/app"}
    assert f"EVM {account.address[:6]}…{account.address[-4:]}&#39;s organization" in html(client.get("/app"))

    key, address = solana_wallet()
    linked = wallet_sign_in(client, "solana", address,
                            lambda m: {"signature": base64.b64encode(solana_sign(key, m)).decode()},
                            url="/account/wallets/solana/link")
    assert linked.status_code == 201 and linked.get_json() == {"redirect": "/account"}
    account_page = html(client.get("/account"))
    assert account.address in account_page and address in account_page
    assert "linked: you can sign in with it too" in account_page

    cosmos_key, cosmos_address = cosmos_wallet()

    def keplr(message):
        signature, public_key = keplr_sign(cosmos_key, message, cosmos_address)
        return {"signature": signature, "public_key": public_key}

    client.post("/logout")
    other = wallet_sign_in(client, "cosmos", cosmos_address, keplr, {"chain_id": "cosmoshub-4"})
    assert other.status_code == 200  # a new account
    taken = wallet_sign_in(client, "evm", account.address, lambda m: {"signature": evm_sign(account.key, m)},
                           url="/account/wallets/evm/link")
    assert taken.status_code == 409 and taken.get_json()["message"] == \
        "this wallet is already linked to another account"


def test_a_bad_wallet_signature_is_refused_with_its_reason(client):
    account, impostor = Account.create(), Account.create()
    refused = wallet_sign_in(client, "evm", account.address, lambda m: {"signature": evm_sign(impostor.key, m)})
    assert refused.status_code == 401
    assert refused.get_json()["message"] == "wallet sign-in failed: signature does not match the address"
    assert client.get("/app").status_code == 302
    bad = client.post("/login/wallet/evm/challenge", json={"address": "0x123"})
    assert bad.status_code == 422 and bad.get_json()["errors"] == {"address": ["not an EVM address"]}
    assert client.post("/login/wallet/evm/verify", data="x").status_code == 422
    assert client.post("/login/wallet/dogecoin/challenge", json={}).status_code == 404


# -- CSRF and error pages ------------------------------------------------------------------------------------------

def test_every_form_needs_the_csrf_token_but_the_api_does_not(make_app):
    guarded = make_app(WTF_CSRF_ENABLED=True)
    with rolled_back(guarded):
        client = guarded.test_client()
        refused = client.post("/signup", data={"email": "ada@example.com", "password": PASSWORD})
        assert refused.status_code == 400 and "This form has expired" in html(refused)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html(client.get("/signup"))).group(1)
        assert client.post("/signup", data={"email": "ada@example.com", "password": PASSWORD,
                                            "csrf_token": token}).status_code == 302
        assert client.post("/context", data={"context": "x/"}).status_code == 400
        assert client.post("/context", data={"context": "x/"}, headers={"X-CSRFToken": token}).status_code == 422
        assert client.post("/login/wallet/evm/challenge", json={"address": "0x0"}).status_code == 400
        page = html(client.get("/app"))
        assert f'hx-headers=\'{{"X-CSRFToken": "{token}"}}\'' in page
        assert f'<meta name="csrf-token" content="{token}">' in page
        api = client.post("/api/v1/auth/email/signup", json={"email": "bob@example.com", "password": PASSWORD})
        assert api.status_code == 201  # the API authenticates by token, not cookie: no CSRF
        assert client.post("/api/v1/public/bots/bot_nope/sessions", json={}).status_code == 404


def test_errors_are_shell_pages_outside_the_api_and_json_inside(client):
    missing = client.get("/no-such-page")
    assert missing.status_code == 404 and missing.mimetype == "text/html"
    assert "Page not found" in html(missing) and 'class="skip"' in html(missing)
    assert client.get("/api/v1/no-such-thing").get_json()["code"] == 404
    assert client.post("/app").status_code == 405 and "Allow" in client.post("/app").headers


# -- the form-error helper -----------------------------------------------------------------------------------------

class Retrieval(PlainForm):
    top_k = IntegerField("How many passages")


class BotForm(PageForm):
    name = StringField("Name")
    settings = TextAreaField("Settings")
    retrieval = FormField(Retrieval)
    welcome_message = StringField("Welcome message")


def test_show_errors_puts_each_message_beside_the_field_that_caused_it(app):
    with app.test_request_context("/chatbots/new", method="POST"):
        form = BotForm(meta={"csrf": False})
        with show_errors(form, fields={"config.lead_capture": "settings"}):
            raise Invalid("the bot is invalid; see `errors`", errors={
                "name": ["give a name"],
                "config": {"retrieval": {"top_k": ["at most 20"]}, "welcome_message": ["too long"],
                           "lead_capture": {"fields": {"0": ["a label is required"]}}, "colour": ["unknown"]},
            })
        assert form.name.errors == ["give a name"]
        assert form.retrieval.top_k.errors == ["at most 20"]  # config.retrieval.top_k -> the sub-form's field
        assert form.welcome_message.errors == ["too long"]  # config.welcome_message -> the last name that exists
        assert form.settings.errors == ["fields.0: a label is required"]  # mapped, with the rest of the path said
        assert form.form_errors == ["config.colour: unknown"]  # no field holds it: said at the top, in full
        assert form_status(form) == 422

    with app.test_request_context("/chatbots/new", method="POST"):
        form = BotForm(meta={"csrf": False})
        with show_errors(form):
            raise Conflict("a bot with this name exists")
        assert form.form_errors == ["a bot with this name exists"] and form_status(form) == 409
        form = BotForm(meta={"csrf": False})
        with show_errors(form, fields={None: "name"}):
            raise Conflict("a bot with this name exists")
        assert form.name.errors == ["a bot with this name exists"]
        form = BotForm(formdata=None, meta={"csrf": False})
        with show_errors(form):
            result = "saved"
        assert result == "saved" and form_status(form) == 200


def test_forms_refuse_text_the_database_cannot_store(client):
    response = sign_up(client, "ada@example.com", name="Ada\x00")
    assert response.status_code == 422
    assert error_of(html(response), "display_name") == "Contains a NUL character, which cannot be stored."


def test_unknown_ids_never_reach_the_database_as_garbage():
    assert shell._uuid("nope") is None and shell._uuid(str(uuid.UUID(int=1))) == uuid.UUID(int=1)
