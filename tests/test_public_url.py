"""This install's address comes from PRIVEX_PUBLIC_URL, never from a request's Host header (issue 9).

A phishing site can send any Host: it must not get a wallet challenge naming itself, a signature it had a visitor's
wallet make for its own domain must not sign anyone in here, and it must neither receive invitation links to itself
nor pass for the app's own page in the public chat API. Signatures are real (eth-account, PyNaCl, coincurve).
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta

import pytest

from privex.app import create_app
from privex.auth.wallets import parse_message
from privex.config import settings_from_env
from privex.urls import check_public_url, default_public_url
from tests.helpers import sign_up
from tests.test_auth_api import WALLETS, EvmWallet, unauthorized
from tests.test_chatbots_api import make_bot

AUTH = "/api/v1/auth"
SITE = "https://bots.example.com"
EVIL = {"Host": "evil.example"}
OTHER_CHAIN = {"evm": "137", "solana": "devnet", "cosmos": "osmosis-1"}


@pytest.fixture()
def site(app, monkeypatch):
    """The app, configured as reached at https://bots.example.com."""
    monkeypatch.setitem(app.config, "PUBLIC_URL", SITE)
    return SITE


@pytest.fixture(params=list(WALLETS))
def wallet(request):
    return WALLETS[request.param]()


def challenge(client, wallet, headers=EVIL):
    """A challenge asked for as a phishing site's server would: with its own Host."""
    response = client.post(f"{AUTH}/{wallet.provider}/challenge", json={"address": wallet.address}, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def answer(client, wallet, issued, signed=None, *, send_message=True, action="verify", headers=None):
    """Verify (or link) ``issued`` with the wallet's real signature of ``signed`` (default: the issued message)."""
    signed = issued["message"] if signed is None else signed
    payload = {"nonce": issued["nonce"], **wallet.sign(signed), **({"message": signed} if send_message else {})}
    return client.post(f"{AUTH}/{wallet.provider}/{action}", json=payload, headers={**EVIL, **(headers or {})})


def rewritten(message: str, field: str, provider: str) -> str:
    """``message`` as an attacker would rewrite one field of it before handing it to the victim's wallet."""
    fields = parse_message(message)
    later = lambda stamp: (datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ") + timedelta(hours=1)  # noqa: E731
                           ).strftime("%Y-%m-%dT%H:%M:%SZ")
    if field == "domain":
        return message.replace(f"{fields['domain']} wants you", "evil.example wants you", 1)
    line, value = {"uri": ("URI", "https://evil.example"), "chain_id": ("Chain ID", OTHER_CHAIN[provider]),
                   "nonce": ("Nonce", secrets.token_hex(16)), "issued_at": ("Issued At", later(fields["issued_at"])),
                   "expiration_time": ("Expiration Time", later(fields["expiration_time"]))}[field]
    changed = re.sub(rf"^{line}: .*$", f"{line}: {value}", message, count=1, flags=re.MULTILINE)
    assert changed != message
    return changed


# --- the challenge --------------------------------------------------------------------------------------------


def test_a_challenge_asked_with_another_host_names_the_configured_site(client, site, wallet):
    issued = challenge(client, wallet)
    assert issued["message"].startswith("bots.example.com wants you to sign in with your ")
    fields = parse_message(issued["message"])
    assert (fields["domain"], fields["uri"]) == ("bots.example.com", SITE)
    assert "evil.example" not in issued["message"]


def test_the_default_address_is_the_local_server_not_the_request(client, wallet):
    issued = challenge(client, wallet, headers={"Host": "evil.example:8443"})
    fields = parse_message(issued["message"])
    assert (fields["domain"], fields["uri"]) == ("127.0.0.1:5000", "http://127.0.0.1:5000")


def test_the_normal_flow_signs_in_with_or_without_the_message_and_a_replay_is_refused(client, site, wallet):
    issued = challenge(client, wallet)
    response = answer(client, wallet, issued)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["access_token"]
    assert "nonce" in unauthorized(answer(client, wallet, issued))["message"]  # replayed
    again = challenge(client, wallet)
    assert answer(client, wallet, again, send_message=False).status_code == 200


# --- what a phishing site could have the victim's wallet sign ---------------------------------------------------


@pytest.mark.parametrize(("field", "named"), [
    ("domain", "domain is 'evil.example', not 'bots.example.com'"),
    ("uri", "URI is 'https://evil.example', not 'https://bots.example.com'"),
    ("chain_id", "chain ID is"),
    ("nonce", "nonce is"),
    ("issued_at", "issued-at time is"),
    ("expiration_time", "expiration time is"),
])
def test_a_rewritten_message_signed_by_the_real_wallet_is_refused_naming_the_field(client, site, wallet, field,
                                                                                   named):
    issued = challenge(client, wallet)
    forged = rewritten(issued["message"], field, wallet.provider)
    body = unauthorized(answer(client, wallet, issued, forged))
    assert named in body["message"] and body["message"].startswith("wallet sign-in failed: the signed message's ")
    # Without the message, the signature is checked against the issued one: it does not match.
    fresh = challenge(client, wallet)
    forged = rewritten(fresh["message"], field, wallet.provider)
    body = unauthorized(answer(client, wallet, fresh, forged, send_message=False))
    assert "signature does not match" in body["message"]


def test_a_message_the_attacker_wrote_for_its_own_domain_never_signs_in(client, site, wallet):
    """The phishing site's whole message (its domain, URI and the real nonce) signed on its page, replayed here."""
    issued = challenge(client, wallet)
    forged = issued["message"].replace("bots.example.com wants", "evil.example wants").replace(
        f"URI: {SITE}", "URI: https://evil.example")
    unauthorized(answer(client, wallet, issued, forged))
    unauthorized(answer(client, wallet, issued, forged))  # and the nonce is spent: no second try either


def test_the_same_fields_with_other_bytes_are_refused(client, site, wallet):
    issued = challenge(client, wallet)
    body = unauthorized(answer(client, wallet, issued, issued["message"].replace("\n", "\r\n")))
    assert "not a sign-in message of this site" in body["message"]
    issued = challenge(client, wallet)
    body = unauthorized(answer(client, wallet, issued, issued["message"].replace("Sign in to", "Sign in  to")))
    assert "statement is" in body["message"]
    issued = challenge(client, wallet)
    body = unauthorized(answer(client, wallet, issued, "hello"))
    assert "not a sign-in message" in body["message"]


def test_a_challenge_issued_before_the_address_changed_is_refused(client, app, monkeypatch, site, wallet):
    issued = challenge(client, wallet)
    monkeypatch.setitem(app.config, "PUBLIC_URL", "https://chat.example.org")
    body = unauthorized(answer(client, wallet, issued))
    assert "ask for a new challenge" in body["message"] and "https://chat.example.org" in body["message"]


def test_link_refuses_a_rewritten_message_and_links_the_issued_one(client, site, wallet):
    ada = sign_up(client, "ada")
    issued = challenge(client, wallet)
    body = unauthorized(answer(client, wallet, issued, rewritten(issued["message"], "domain", wallet.provider),
                               action="link", headers=ada.headers))
    assert "domain is 'evil.example'" in body["message"]
    issued = challenge(client, wallet)
    linked = answer(client, wallet, issued, action="link", headers=ada.headers)
    assert linked.status_code == 201, linked.get_json()
    identities = ada.get(f"{AUTH}/me").get_json()["identities"]
    assert (wallet.provider, wallet.address) in [(i["provider"], i["provider_id"]) for i in identities]


# --- links and origins -------------------------------------------------------------------------------------------


def test_an_invitation_link_points_at_the_configured_site_whatever_the_host(client, site):
    owner = sign_up(client, "olga")
    response = owner.post(f"/api/v1/orgs/{owner.organization_id}/members", headers=EVIL,
                          json={"email": "new@example.com", "role": "member"})
    assert response.status_code == 201, response.get_json()
    invitation = response.get_json()["invitation"]
    assert invitation["accept_url"] == f"{SITE}/api/v1/invitations/{invitation['token']}/accept"


def test_a_site_sending_its_own_host_is_not_the_apps_own_page(client, site):
    bot = make_bot(sign_up(client, "olga"))  # no allowed origins: only the app's own pages may use it
    sessions = f"/api/v1/public/bots/{bot['public_id']}/sessions"
    forged = client.post(sessions, json={}, headers={**EVIL, "Origin": "http://evil.example"})
    assert forged.status_code == 403, forged.get_json()
    own = client.post(sessions, json={}, headers={**EVIL, "Origin": SITE})
    assert own.status_code == 201, own.get_json()
    assert own.headers["Access-Control-Allow-Origin"] == SITE


# --- the setting -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "origin"), [
    ("https://bots.example.com", "https://bots.example.com"),
    ("https://Bots.Example.COM/", "https://bots.example.com"),
    ("HTTPS://bots.example.com:443", "https://bots.example.com"),
    ("http://bots.example.com:80", "http://bots.example.com"),
    ("http://10.0.0.5:8080", "http://10.0.0.5:8080"),
    ("http://[::1]:5000", "http://[::1]:5000"),
])
def test_the_public_url_is_kept_as_an_origin(value, origin):
    assert check_public_url(value) == origin


@pytest.mark.parametrize(("value", "reason"), [
    ("bots.example.com", "scheme must be http or https"),
    ("ftp://bots.example.com", "scheme must be http or https"),
    ("https://", "names no host"),
    ("https://bots.example.com/chat", "no path"),
    ("https://bots.example.com/?a=1", "no path, query"),
    ("https://bots.example.com#x", "fragment"),
    ("https://bots.example.com?", "query"),
    ("https://user:pw@bots.example.com", "no user name"),
    ("https://bots.example.com:99999", "got"),
    ("https://bots.example.com:port", "got"),
])
def test_a_malformed_public_url_is_refused_naming_the_setting(value, reason):
    with pytest.raises(ValueError, match=r"^PRIVEX_PUBLIC_URL must be the address") as raised:
        check_public_url(value)
    assert reason in str(raised.value)


def test_a_malformed_public_url_stops_the_app_at_start_up(base_config):
    with pytest.raises(ValueError, match="PRIVEX_PUBLIC_URL .* no path"):
        create_app({**base_config, "PUBLIC_URL": "https://bots.example.com/app"})


def test_the_default_comes_from_host_and_port():
    config = settings_from_env({})
    assert "PUBLIC_URL" not in config
    assert default_public_url(config["HOST"], config["PORT"]) == "http://127.0.0.1:5000"
    assert default_public_url("0.0.0.0", 8000) == "http://127.0.0.1:8000"
    assert default_public_url("::1", 8000) == "http://[::1]:8000"
    assert settings_from_env({"PRIVEX_PUBLIC_URL": " "}).get("PUBLIC_URL") is None


def test_an_evm_challenge_for_a_public_url_with_a_port_names_host_and_port(client, app, monkeypatch):
    monkeypatch.setitem(app.config, "PUBLIC_URL", "https://bots.example.com:8443")
    fields = parse_message(challenge(client, EvmWallet())["message"])
    assert (fields["domain"], fields["uri"]) == ("bots.example.com:8443", "https://bots.example.com:8443")
