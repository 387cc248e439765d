"""The auth API as a user meets it: sign-up, sign-in, tokens, sessions, context switching, rate limits, wallets."""

from __future__ import annotations

import base64
import hashlib
import time
from datetime import datetime, timedelta, timezone

import base58
import jwt
import pytest
import sqlalchemy as sa
from coincurve import PrivateKey
from eth_account import Account
from eth_account.messages import encode_defunct
from nacl.signing import SigningKey

from privex.auth.wallets.cosmos import address_of, sign_doc
from privex.models import AuthIdentity
from tests.helpers import PASSWORD, add_member, log_in, sign_up

AUTH = "/api/v1/auth"
NEW_PASSWORD = "N3w-passw0rd!"


def error(response, status):
    """The JSON error body, after checking the status and the shape every API error has."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"code", "message", "errors"} and body["code"] == status
    return body


def unauthorized(response):
    body = error(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    return body


def claims_of(app, token):
    return jwt.decode(token, app.config["SECRET_KEY"], algorithms=["HS256"])


def me(client, token):
    return client.get(f"{AUTH}/me", headers={"Authorization": f"Bearer {token}"})


def works(client, token):
    """Whether ``token`` is accepted."""
    response = me(client, token)
    assert response.status_code in (200, 401), response.get_data(as_text=True)
    return response.status_code == 200


def identities_of(database, user_id):
    """(provider, provider_id) of a user's sign-in identities, as stored."""
    return sorted(tuple(row) for row in database.session.execute(
        sa.select(AuthIdentity.provider, AuthIdentity.provider_id).where(AuthIdentity.user_id == user_id)))


def refresh(client, token):
    return client.post(f"{AUTH}/refresh", json={"refresh_token": token})


# --- Sign-up ----------------------------------------------------------------------------------------------------


def test_signup_answers_201_with_tokens_user_and_owner_context(client):
    response = client.post(f"{AUTH}/email/signup", json={"email": "ada@example.com", "password": PASSWORD,
                                                          "display_name": "Ada"})
    assert response.status_code == 201
    body = response.get_json()
    assert body["access_token"] and body["refresh_token"].startswith("rt_")
    assert body["token_type"] == "bearer" and body["expires_in"] == 30 * 60
    assert body["user"]["email"] == "ada@example.com" and body["user"]["display_name"] == "Ada"
    context = body["context"]
    assert context["organization_id"] and context["workspace_id"]
    assert (context["organization_role"], context["workspace_role"]) == ("owner", "admin")


def test_signup_creates_a_personal_organization_with_a_default_workspace(client):
    ada = sign_up(client, "ada")
    [organization] = ada.get("/api/v1/orgs").get_json()
    assert (organization["id"], organization["is_personal"]) == (ada.organization_id, True)
    [workspace] = ada.get(f"/api/v1/orgs/{ada.organization_id}/workspaces").get_json()
    assert (workspace["id"], workspace["name"], workspace["is_default"]) == (ada.workspace_id, "Default", True)


def test_me_shows_the_personal_organization_and_default_workspace(client):
    ada = sign_up(client, "ada")
    body = ada.get(f"{AUTH}/me").get_json()
    [organization] = body["organizations"]
    assert organization["id"] == ada.organization_id
    assert organization["is_personal"] is True and organization["role"] == "owner"
    assert [(w["id"], w["name"], w["role"]) for w in organization["workspaces"]] == [
        (ada.workspace_id, "Default", "admin")]
    assert body["context"]["organization_id"] == ada.organization_id
    assert body["context"]["workspace_id"] == ada.workspace_id


@pytest.mark.parametrize(("password", "missing"), [
    ("Sh0rt!x", "8 characters"),
    ("no-upper-1", "an upper-case letter"),
    ("NO-LOWER-1", "a lower-case letter"),
    ("No-digits-here", "a digit"),
    ("NoSymbol123", "a symbol"),
])
def test_signup_with_a_weak_password_is_a_422_naming_what_is_missing(client, password, missing):
    response = client.post(f"{AUTH}/email/signup", json={"email": "ada@example.com", "password": password})
    body = error(response, 422)
    [reason] = body["errors"]["password"]
    assert reason.endswith(f"missing: {missing}")


def test_signup_with_the_longest_display_name_allowed_succeeds(client):
    response = client.post(f"{AUTH}/email/signup", json={"email": "ada@example.com", "password": PASSWORD,
                                                          "display_name": "A" * 120})
    assert response.status_code == 201


def test_signup_with_an_email_too_long_to_store_is_a_422(client):
    email = "a" * 64 + "@" + ("b" * 63 + ".") * 4 + "com"  # 324 characters, valid per RFC 5321 parts
    assert "email" in error(client.post(f"{AUTH}/email/signup", json={"email": email, "password": PASSWORD}),
                            422)["errors"]


def test_signup_with_an_invalid_email_is_a_422(client):
    body = error(client.post(f"{AUTH}/email/signup", json={"email": "not-an-email", "password": PASSWORD}), 422)
    assert "email" in body["errors"]


def test_signup_with_an_email_already_taken_in_another_case_is_a_409(client):
    sign_up(client, "ada")
    response = client.post(f"{AUTH}/email/signup", json={"email": "ADA@Example.COM", "password": PASSWORD})
    error(response, 409)


def test_signup_with_malformed_json_is_a_400(client):
    error(client.post(f"{AUTH}/email/signup", data='{"email": ', content_type="application/json"), 400)


def test_signup_with_a_form_body_is_a_415(client):
    response = client.post(f"{AUTH}/email/signup", data={"email": "ada@example.com", "password": PASSWORD})
    assert "application/json" in error(response, 415)["message"]


def test_signup_without_fields_is_a_422_naming_each(client):
    body = error(client.post(f"{AUTH}/email/signup", json={}), 422)
    assert set(body["errors"]) == {"email", "password"}


# --- Login ------------------------------------------------------------------------------------------------------


def test_login_with_the_right_password_returns_the_same_user(client):
    ada = sign_up(client, "ada")
    again = log_in(client, ada.email)
    assert again.user_id == ada.user_id and again.organization_id == ada.organization_id
    assert again.access_token != ada.access_token and again.refresh_token != ada.refresh_token


def test_wrong_password_and_unknown_email_answer_alike(client):
    sign_up(client, "ada")
    wrong = client.post(f"{AUTH}/email/login", json={"email": "ada@example.com", "password": "Wr0ng-password!"})
    unknown = client.post(f"{AUTH}/email/login", json={"email": "bob@example.com", "password": PASSWORD})
    assert unauthorized(wrong)["message"] == unauthorized(unknown)["message"]


def test_login_email_is_case_insensitive(client):
    ada = sign_up(client, "ada")
    assert log_in(client, "  ADA@example.Com ").user_id == ada.user_id


def test_password_is_stored_as_an_argon2id_hash(client, database):
    sign_up(client, "ada")
    stored = database.session.scalar(sa.select(AuthIdentity.password_hash).where(
        AuthIdentity.provider == "email", AuthIdentity.provider_id == "ada@example.com"))
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


# --- Access tokens ----------------------------------------------------------------------------------------------


def test_me_answers_with_an_access_token(client):
    ada = sign_up(client, "ada")
    body = ada.get(f"{AUTH}/me").get_json()
    assert body["id"] == ada.user_id and body["email"] == ada.email


def test_me_without_a_token_is_a_401_with_www_authenticate(client):
    unauthorized(client.get(f"{AUTH}/me"))


def test_a_tampered_signature_is_a_401(client):
    token = sign_up(client, "ada").access_token
    header, payload, signature = token.split(".")
    middle = len(signature) // 2  # not the last character, whose low bits are base64 padding
    signature = signature[:middle] + ("A" if signature[middle] != "A" else "B") + signature[middle + 1:]
    assert "invalid" in unauthorized(me(client, f"{header}.{payload}.{signature}"))["message"]


def test_an_expired_token_is_a_401_saying_so(app, client):
    claims = claims_of(app, sign_up(client, "ada").access_token)
    past = datetime.now(timezone.utc) - timedelta(hours=1)
    forged = jwt.encode({**claims, "iat": past - timedelta(minutes=30), "exp": past}, app.config["SECRET_KEY"],
                        algorithm="HS256")
    assert "expired" in unauthorized(me(client, forged))["message"]
    assert works(client, jwt.encode(claims, app.config["SECRET_KEY"], algorithm="HS256"))  # only exp differs


def test_a_token_signed_with_another_key_is_a_401(app, client):
    claims = claims_of(app, sign_up(client, "ada").access_token)
    unauthorized(me(client, jwt.encode(claims, "another-secret-key-of-32-bytes!!", algorithm="HS256")))


def test_an_unsigned_token_is_a_401(app, client):
    claims = claims_of(app, sign_up(client, "ada").access_token)
    unauthorized(me(client, jwt.encode(claims, None, algorithm="none")))


@pytest.mark.parametrize("header", ["Bearer abc", "Bearer ", "Basic YWRhOnB3", "abc"])
def test_garbage_authorization_is_a_401(client, header):
    unauthorized(client.get(f"{AUTH}/me", headers={"Authorization": header}))


# --- Refresh ----------------------------------------------------------------------------------------------------


def test_refresh_rotates_the_refresh_token(app, client):
    ada = sign_up(client, "ada")
    response = refresh(client, ada.refresh_token)
    assert response.status_code == 200
    body = response.get_json()
    assert body["refresh_token"] != ada.refresh_token
    assert works(client, body["access_token"])
    assert claims_of(app, body["access_token"])["sid"] == claims_of(app, ada.access_token)["sid"]


def test_reusing_a_rotated_refresh_token_revokes_the_whole_session(client):
    ada = sign_up(client, "ada")
    newest = refresh(client, ada.refresh_token).get_json()
    assert "already used" in unauthorized(refresh(client, ada.refresh_token))["message"]
    unauthorized(refresh(client, newest["refresh_token"]))
    unauthorized(me(client, newest["access_token"]))
    unauthorized(me(client, ada.access_token))


def test_an_unknown_refresh_token_is_a_401(client):
    unauthorized(refresh(client, "rt_" + "x" * 43))


def test_an_expired_refresh_token_is_a_401(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "REFRESH_TOKEN_DAYS", 0)
    ada = sign_up(client, "ada")
    assert "expired" in unauthorized(refresh(client, ada.refresh_token))["message"]


# --- Logout -----------------------------------------------------------------------------------------------------


def test_logout_ends_only_this_session(client):
    ada = sign_up(client, "ada")
    laptop = log_in(client, ada.email)
    assert ada.post(f"{AUTH}/logout").status_code == 204
    unauthorized(ada.get(f"{AUTH}/me"))
    unauthorized(refresh(client, ada.refresh_token))
    assert works(client, laptop.access_token)
    assert refresh(client, laptop.refresh_token).status_code == 200


# --- Change password --------------------------------------------------------------------------------------------


def change_password(person, current, new):
    return person.post(f"{AUTH}/email/change-password", json={"current_password": current, "new_password": new})


def test_change_password_with_a_wrong_current_password_is_a_401(client):
    ada = sign_up(client, "ada")
    unauthorized(change_password(ada, "Wr0ng-password!", NEW_PASSWORD))


def test_change_password_to_a_weak_one_is_a_422(client):
    ada = sign_up(client, "ada")
    body = error(change_password(ada, PASSWORD, "weakpassword"), 422)
    assert "missing" in body["errors"]["new_password"][0]


def test_change_password_signs_out_other_sessions_and_keeps_this_one(client):
    ada = sign_up(client, "ada")
    phone = log_in(client, ada.email)
    response = change_password(ada, PASSWORD, NEW_PASSWORD)
    assert response.status_code == 200 and "1 other session" in response.get_json()["message"]
    unauthorized(phone.get(f"{AUTH}/me"))
    unauthorized(refresh(client, phone.refresh_token))
    assert works(client, ada.access_token)
    assert refresh(client, ada.refresh_token).status_code == 200


def test_after_change_password_only_the_new_password_logs_in(client):
    ada = sign_up(client, "ada")
    change_password(ada, PASSWORD, NEW_PASSWORD)
    unauthorized(client.post(f"{AUTH}/email/login", json={"email": ada.email, "password": PASSWORD}))
    assert log_in(client, ada.email, NEW_PASSWORD).user_id == ada.user_id


# --- Switch context ---------------------------------------------------------------------------------------------


def switch(person, organization_id, workspace_id=None):
    payload = {"organization_id": organization_id}
    if workspace_id:
        payload["workspace_id"] = workspace_id
    return person.post(f"{AUTH}/switch-context", json=payload)


def join(owner, member, workspace=True):
    """``owner`` adds ``member`` to their organization as a member (and editor of the default workspace)."""
    payload = {"email": member.email, "role": "member"}
    if workspace:
        payload.update(workspace_id=owner.workspace_id, workspace_role="editor")
    response = owner.post(f"/api/v1/orgs/{owner.organization_id}/members", json=payload)
    assert response.status_code == 201, response.get_json()


def test_switching_to_an_organization_you_are_not_in_is_a_404(client):
    ada, bob = sign_up(client, "ada"), sign_up(client, "bob")
    error(switch(ada, bob.organization_id), 404)


def test_switching_to_a_workspace_of_another_organization_is_a_404(client):
    ada, bob = sign_up(client, "ada"), sign_up(client, "bob")
    error(switch(ada, ada.organization_id, bob.workspace_id), 404)


def test_switching_to_a_workspace_you_are_not_in_is_a_404(client):
    ada, bob = sign_up(client, "ada"), sign_up(client, "bob")
    join(ada, bob, workspace=False)
    error(switch(bob, ada.organization_id, ada.workspace_id), 404)
    assert switch(bob, ada.organization_id).get_json()["context"]["workspace_id"] is None


def test_after_joining_an_organization_you_can_switch_to_it(app, client):
    ada, bob = sign_up(client, "ada"), sign_up(client, "bob")
    join(ada, bob)
    response = switch(bob, ada.organization_id, ada.workspace_id)
    assert response.status_code == 200
    body = response.get_json()
    expected = {"organization_id": ada.organization_id, "workspace_id": ada.workspace_id,
                "organization_role": "member", "workspace_role": "editor"}
    assert body["context"] == expected and body["refresh_token"] is None
    claims = claims_of(app, body["access_token"])
    assert (claims["org"], claims["ws"], claims["org_role"], claims["ws_role"]) == tuple(expected.values())
    assert works(client, body["access_token"])


def test_me_shows_the_switched_context(client):
    ada, bob = sign_up(client, "ada"), sign_up(client, "bob")
    join(ada, bob)
    bob.use(switch(bob, ada.organization_id, ada.workspace_id).get_json())
    assert bob.get(f"{AUTH}/me").get_json()["context"] == {
        "organization_id": ada.organization_id, "workspace_id": ada.workspace_id,
        "organization_role": "member", "workspace_role": "editor"}


def test_the_refresh_token_follows_a_context_switch(app, client):
    ada, bob = sign_up(client, "ada"), sign_up(client, "bob")
    join(ada, bob)
    switch(bob, ada.organization_id)
    response = refresh(client, bob.refresh_token)
    assert response.status_code == 200
    body = response.get_json()
    assert body["context"]["organization_id"] == ada.organization_id
    assert body["context"]["workspace_id"] == ada.workspace_id
    assert claims_of(app, body["access_token"])["org"] == ada.organization_id


# --- Rate limit -------------------------------------------------------------------------------------------------


def bad_login(client, **kwargs):
    return client.post(f"{AUTH}/email/login", json={"email": "ada@example.com", "password": "Wr0ng-password!"},
                       **kwargs)


def test_the_eleventh_failed_login_is_a_429_with_retry_after(app, client):
    assert app.config["AUTH_RATELIMIT"] == "10 per minute"
    for _ in range(10):
        unauthorized(bad_login(client))
    response = bad_login(client)
    error(response, 429)
    assert int(response.headers["Retry-After"]) > 0


def test_once_limited_even_the_right_password_waits(client):
    ada = sign_up(client, "ada")
    for _ in range(10):
        bad_login(client)
    error(client.post(f"{AUTH}/email/login", json={"email": ada.email, "password": PASSWORD}), 429)


def test_successful_logins_do_not_count_toward_the_limit(client):
    ada = sign_up(client, "ada")
    for _ in range(9):
        unauthorized(bad_login(client))
    for _ in range(5):
        log_in(client, ada.email)
    unauthorized(bad_login(client))  # the 10th failure is still answered
    error(bad_login(client), 429)


def test_the_limit_is_per_client_address_and_endpoint(client):
    for _ in range(10):
        bad_login(client)
    unauthorized(bad_login(client, environ_base={"REMOTE_ADDR": "203.0.113.9"}))
    unauthorized(refresh(client, "rt_unknown"))


# --- Wallets ----------------------------------------------------------------------------------------------------


class EvmWallet:
    provider = "evm"

    def __init__(self):
        self.account = Account.create()
        self.address = self.account.address

    def sign(self, message):
        signature = Account.sign_message(encode_defunct(text=message), self.account.key).signature
        return {"signature": "0x" + bytes(signature).hex()}


class SolanaWallet:
    provider = "solana"

    def __init__(self):
        self.key = SigningKey.generate()
        self.address = base58.b58encode(bytes(self.key.verify_key)).decode()

    def sign(self, message):
        return {"signature": base58.b58encode(self.key.sign(message.encode()).signature).decode()}


class CosmosWallet:
    provider = "cosmos"

    def __init__(self, prefix="cosmos"):
        self.key = PrivateKey()
        self.address = address_of(self.key.public_key.format(), prefix)

    def sign(self, message, signer=None):
        """Keplr's signArbitrary: base64 r||s over SHA-256 of the ADR-36 amino sign doc, and the base64 key."""
        digest = hashlib.sha256(sign_doc(message, signer or self.address)).digest()
        compact = self.key.sign_recoverable(digest, hasher=None)[:64]
        return {"signature": base64.b64encode(compact).decode(),
                "public_key": base64.b64encode(self.key.public_key.format()).decode()}


WALLETS = {"evm": EvmWallet, "solana": SolanaWallet, "cosmos": CosmosWallet}


@pytest.fixture(params=list(WALLETS))
def new_wallet(request):
    """Makes fresh wallets of one type (each test runs once per type)."""
    return WALLETS[request.param]


def challenge(client, wallet, **extra):
    response = client.post(f"{AUTH}/{wallet.provider}/challenge", json={"address": wallet.address, **extra})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def verify(client, wallet, issued, signer=None, provider=None, **extra):
    """Answer the challenge ``issued`` with ``signer``'s (default: ``wallet``'s) signature of its message."""
    payload = {"nonce": issued["nonce"], **(signer or wallet).sign(issued["message"]), **extra}
    return client.post(f"{AUTH}/{provider or wallet.provider}/verify", json=payload)


def wallet_sign_in(client, wallet):
    response = verify(client, wallet, challenge(client, wallet))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_a_new_wallet_signs_in_and_gets_an_account(client, database, new_wallet):
    wallet = new_wallet()
    issued = challenge(client, wallet)
    assert issued["address"] == wallet.address and wallet.address in issued["message"]
    response = verify(client, wallet, issued)
    assert response.status_code == 200
    body = response.get_json()
    assert body["access_token"] and body["refresh_token"]
    assert body["context"]["organization_role"] == "owner"
    assert identities_of(database, body["user"]["id"]) == [(wallet.provider, wallet.address)]
    assert works(client, body["access_token"])


def test_signing_in_again_with_the_same_wallet_is_the_same_user(client, new_wallet):
    wallet = new_wallet()
    assert wallet_sign_in(client, wallet)["user"]["id"] == wallet_sign_in(client, wallet)["user"]["id"]


def test_a_challenge_for_a_malformed_address_is_a_422(client, new_wallet):
    response = client.post(f"{AUTH}/{new_wallet.provider}/challenge", json={"address": "0xnot-an-address"})
    assert "address" in error(response, 422)["errors"]


def test_a_replayed_nonce_is_a_401(client, new_wallet):
    wallet = new_wallet()
    issued = challenge(client, wallet)
    assert verify(client, wallet, issued).status_code == 200
    assert "nonce" in unauthorized(verify(client, wallet, issued))["message"]


def test_an_unknown_nonce_is_a_401(client, new_wallet):
    wallet = new_wallet()
    issued = {**challenge(client, wallet), "nonce": "0" * 32}
    unauthorized(verify(client, wallet, issued))


def test_an_expired_nonce_is_a_401(app, client, monkeypatch, new_wallet):
    monkeypatch.setitem(app.config, "WALLET_NONCE_SECONDS", 1)
    wallet = new_wallet()
    issued = challenge(client, wallet)
    time.sleep(1.1)
    unauthorized(verify(client, wallet, issued))


def test_a_nonce_issued_for_another_wallet_type_is_a_401(client, new_wallet):
    wallet = new_wallet()
    other_type = "solana" if wallet.provider == "evm" else "evm"
    body = unauthorized(verify(client, wallet, challenge(client, wallet), provider=other_type))
    assert f"issued for a {wallet.provider} wallet" in body["message"]


def test_verifying_with_another_address_is_a_401(client, new_wallet):
    wallet = new_wallet()
    body = unauthorized(verify(client, wallet, challenge(client, wallet), address=new_wallet().address))
    assert "address differs" in body["message"]


def test_verifying_with_another_chain_is_a_401(client, new_wallet):
    wallet = new_wallet()
    body = unauthorized(verify(client, wallet, challenge(client, wallet), chain_id="42"))
    assert "chain id differs" in body["message"]


def test_a_signature_by_another_key_is_a_401(client, new_wallet):
    wallet = new_wallet()
    unauthorized(verify(client, wallet, challenge(client, wallet), signer=new_wallet()))


def test_a_signature_of_another_message_is_a_401(client, new_wallet):
    wallet = new_wallet()
    issued = challenge(client, wallet)
    unauthorized(verify(client, wallet, {**issued, "message": issued["message"] + "\n"}))


MALFORMED_SIGNATURES = [
    "garbage!!",
    " ",
    "0x",
    "0x" + "zz" * 65,
    "0x" + "11" * 64,
    "0x" + "00" * 65,
    "0x" + "ff" * 65,
    base64.b64encode(b"\x01" * 63).decode(),
    base64.b64encode(b"\xff" * 64).decode(),
    base58.b58encode(b"\x01" * 65).decode(),
    "é" * 100,
    "A" * 1024,
]


@pytest.mark.parametrize("signature", MALFORMED_SIGNATURES)
def test_a_malformed_signature_is_a_401_never_a_500(client, new_wallet, signature):
    wallet = new_wallet()
    issued = challenge(client, wallet)
    payload = {"nonce": issued["nonce"], **wallet.sign(issued["message"]), "signature": signature}
    unauthorized(client.post(f"{AUTH}/{wallet.provider}/verify", json=payload))


def test_evm_lowercase_address_is_answered_with_the_checksum_address(client, database):
    wallet = EvmWallet()
    issued = challenge(client, wallet, address=wallet.address.lower())
    assert issued["address"] == wallet.address != wallet.address.lower()
    assert f"\n{wallet.address}\n" in issued["message"]
    body = verify(client, wallet, issued, address=wallet.address.lower()).get_json()
    assert identities_of(database, body["user"]["id"]) == [("evm", wallet.address)]


def test_evm_metamask_hex_chain_id_becomes_decimal(client):
    wallet = EvmWallet()
    issued = challenge(client, wallet, chain_id="0x89")
    assert issued["chain_id"] == "137" and "\nChain ID: 137\n" in issued["message"]
    assert verify(client, wallet, issued, chain_id="137").status_code == 200


def test_evm_verify_accepts_the_hex_chain_id_that_challenge_accepted(client):
    wallet = EvmWallet()
    issued = challenge(client, wallet, chain_id="0x89")
    assert verify(client, wallet, issued, chain_id="0x89").status_code == 200


def test_evm_chain_id_that_is_not_a_number_is_a_422(client):
    assert "chain_id" in error(client.post(f"{AUTH}/evm/challenge", json={
        "address": EvmWallet().address, "chain_id": "0xzz"}), 422)["errors"]


def test_cosmos_prefix_mismatch_at_challenge_is_a_422(client):
    response = client.post(f"{AUTH}/cosmos/challenge", json={"address": CosmosWallet().address, "prefix": "osmo"})
    assert "address" in error(response, 422)["errors"]


def test_cosmos_chain_with_its_own_prefix_signs_in(client):
    wallet = CosmosWallet("osmo")
    issued = challenge(client, wallet, prefix="osmo", chain_id="osmosis-1")
    assert "\nChain ID: osmosis-1\n" in issued["message"]
    assert verify(client, wallet, issued).status_code == 200


def test_cosmos_verify_without_public_key_is_a_401(client):
    wallet = CosmosWallet()
    issued = challenge(client, wallet)
    response = client.post(f"{AUTH}/cosmos/verify", json={
        "nonce": issued["nonce"], "signature": wallet.sign(issued["message"])["signature"]})
    assert "public key required" in unauthorized(response)["message"]


def test_cosmos_public_key_of_another_wallet_is_a_401(client):
    wallet, other = CosmosWallet(), CosmosWallet()
    issued = challenge(client, wallet)
    response = verify(client, wallet, issued, public_key=other.sign("x")["public_key"])
    assert "public key does not match" in unauthorized(response)["message"]


# --- Link -------------------------------------------------------------------------------------------------------


def link(person, wallet, **extra):
    issued = challenge(person.client, wallet)
    payload = {"nonce": issued["nonce"], **wallet.sign(issued["message"]), **extra}
    return person.post(f"{AUTH}/{wallet.provider}/link", json=payload)


def test_an_email_user_links_a_wallet_and_signs_in_with_it(client, database):
    ada, wallet = sign_up(client, "ada"), EvmWallet()
    response = link(ada, wallet)
    assert response.status_code == 201
    assert (response.get_json()["provider"], response.get_json()["provider_id"]) == ("evm", wallet.address)
    assert wallet_sign_in(client, wallet)["user"]["id"] == ada.user_id
    assert identities_of(database, ada.user_id) == [("email", ada.email), ("evm", wallet.address)]


def test_me_lists_both_identities_after_linking(client):
    ada, wallet = sign_up(client, "ada"), EvmWallet()
    assert link(ada, wallet).status_code == 201
    identities = ada.get(f"{AUTH}/me").get_json()["identities"]
    assert sorted((i["provider"], i["provider_id"]) for i in identities) == [
        ("email", ada.email), ("evm", wallet.address)]


def test_linking_a_wallet_of_another_user_is_a_409(client, database):
    wallet = EvmWallet()
    wallet_sign_in(client, wallet)
    ada = sign_up(client, "ada")
    error(link(ada, wallet), 409)
    assert identities_of(database, ada.user_id) == [("email", ada.email)]


def test_linking_without_a_token_is_a_401(client):
    wallet = EvmWallet()
    issued = challenge(client, wallet)
    unauthorized(client.post(f"{AUTH}/evm/link", json={"nonce": issued["nonce"], **wallet.sign(issued["message"])}))


def test_linking_with_a_bad_signature_is_a_401_and_links_nothing(client, database):
    ada = sign_up(client, "ada")
    unauthorized(link(ada, EvmWallet(), signature="0x" + "11" * 65))
    assert identities_of(database, ada.user_id) == [("email", ada.email)]


def test_a_wallet_only_user_cannot_change_a_password(client):
    body = wallet_sign_in(client, SolanaWallet())
    response = client.post(f"{AUTH}/email/change-password", headers={"Authorization": f"Bearer {body['access_token']}"},
                           json={"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    error(response, 409)


def test_linking_a_wallet_you_already_hold_changes_nothing(client):
    ada = sign_up(client, "ada")
    wallet = EvmWallet()
    assert link(ada, wallet).status_code == 201
    again = link(ada, wallet)
    assert again.status_code == 200
    identities = ada.get(f"{AUTH}/me").get_json()["identities"]
    assert [i["provider"] for i in identities].count("evm") == 1


def test_a_member_removed_from_an_organization_lands_back_home_on_refresh(client):
    owner, member = sign_up(client, "olga"), sign_up(client, "mike")
    home = member.organization_id
    add_member(owner, member)
    assert owner.delete(f"/api/v1/orgs/{owner.organization_id}/members/{member.user_id}").status_code == 204
    refreshed = client.post(f"{AUTH}/refresh", json={"refresh_token": member.refresh_token})
    assert refreshed.status_code == 200
    assert refreshed.get_json()["context"]["organization_id"] == home
    assert refreshed.get_json()["context"]["organization_role"] == "owner"
