"""Wallet sign-in (privex.auth.wallets) with real keys: EIP-4361 + personal_sign, Phantom, Keplr ADR-36."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import base58
import pytest
from bech32 import bech32_encode, convertbits
from coincurve import PrivateKey
from eth_account import Account
from eth_account.messages import encode_defunct
from nacl.signing import SigningKey

from privex.auth.wallets import (Challenge, WalletVerificationError, build_challenge, message_difference,
                                 normalize_address, parse_message, verify)

CHAIN_IDS = {"evm": "1", "solana": "mainnet", "cosmos": "cosmoshub-4"}
GOOD = object()  # stands for the valid value in parametrised cases
SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def challenge_for(provider: str, address: str, **overrides) -> Challenge:
    arguments = {
        "domain": "privex.example",
        "uri": "https://privex.example/login",
        "chain_id": CHAIN_IDS[provider],
        "nonce": secrets.token_hex(16),
        "issued_at": datetime.now(timezone.utc),
        "ttl": timedelta(minutes=5),
    }
    return build_challenge(provider, address, **(arguments | overrides))


def expired(provider: str, address: str) -> Challenge:
    return challenge_for(provider, address, issued_at=datetime.now(timezone.utc) - timedelta(minutes=10))


# --- EVM ------------------------------------------------------------------------------------------------------


def evm_sign(key: bytes, message: str) -> str:
    # HexBytes.hex() has no "0x" in hexbytes 1.x
    return "0x" + bytes(Account.sign_message(encode_defunct(text=message), key).signature).hex()


def test_evm_message_follows_eip4361_line_by_line():
    account = Account.create()
    challenge = build_challenge(
        "evm",
        account.address.lower(),
        domain="privex.example",
        uri="https://privex.example/login",
        chain_id="137",
        nonce="abc123XYZ789",
        issued_at=datetime(2026, 11, 24, 21, 0, 0, 999, tzinfo=timezone.utc),
        ttl=timedelta(minutes=10),
    )
    assert challenge.message.split("\n") == [
        "privex.example wants you to sign in with your Ethereum account:",
        account.address,
        "",
        "Sign in to PrivexBot",
        "",
        "URI: https://privex.example/login",
        "Version: 1",
        "Chain ID: 137",
        "Nonce: abc123XYZ789",
        "Issued At: 2026-11-24T21:00:00Z",
        "Expiration Time: 2026-11-24T21:10:00Z",
    ]
    assert challenge.issued_at == datetime(2026, 11, 24, 21, 0, 0, tzinfo=timezone.utc)
    assert challenge.expires_at == datetime(2026, 11, 24, 21, 10, 0, tzinfo=timezone.utc)
    assert (challenge.provider, challenge.address, challenge.chain_id) == ("evm", account.address, "137")


def test_message_without_statement_drops_its_lines_as_eip4361_says():
    account = Account.create()
    message = challenge_for("evm", account.address, statement="").message
    assert f"{account.address}\n\n\nURI: " in message


def test_issued_at_in_another_timezone_is_stored_and_written_in_utc():
    plus_two = timezone(timedelta(hours=2))
    challenge = challenge_for("evm", Account.create().address, issued_at=datetime(2026, 1, 1, 12, 0, tzinfo=plus_two))
    assert challenge.issued_at == datetime(2026, 1, 1, 10, 0, tzinfo=timezone.utc)
    assert "Issued At: 2026-01-01T10:00:00Z" in challenge.message


def test_evm_signature_verifies_and_returns_the_checksum_address():
    account = Account.create()
    challenge = challenge_for("evm", account.address.lower())
    assert challenge.address == account.address
    assert verify(challenge, signature=evm_sign(account.key, challenge.message)) == account.address


def test_evm_signature_from_another_account_fails():
    challenge = challenge_for("evm", Account.create().address)
    with pytest.raises(WalletVerificationError, match="^signature does not match the address$"):
        verify(challenge, signature=evm_sign(Account.create().key, challenge.message))


def test_evm_signature_of_another_message_fails():
    account = Account.create()
    challenge = challenge_for("evm", account.address)
    with pytest.raises(WalletVerificationError, match="does not match"):
        verify(challenge, signature=evm_sign(account.key, challenge.message.replace("Nonce", "Nonse")))


@pytest.mark.parametrize(
    "signature",
    [
        "",
        "garbage",
        "0x",
        "0x" + "zz" * 65,  # not hex
        "0x" + "11" * 64,  # 64 bytes
        "0x" + "11" * 66,  # 66 bytes
        "0x" + "00" * 65,  # r = s = 0
        "0x" + "ff" * 65,  # r above the curve order
        "0x" + "11" * 64 + "05",  # invalid v
        None,
        b"\x00" * 65,
    ],
)
def test_evm_malformed_signature_fails_cleanly(signature):
    challenge = challenge_for("evm", Account.create().address)
    with pytest.raises(WalletVerificationError):
        verify(challenge, signature=signature)


def test_evm_signature_without_0x_prefix_is_refused():
    account = Account.create()
    challenge = challenge_for("evm", account.address)
    with pytest.raises(WalletVerificationError, match="malformed signature"):
        verify(challenge, signature=evm_sign(account.key, challenge.message)[2:])


def test_evm_expired_challenge_fails():
    account = Account.create()
    challenge = expired("evm", account.address)
    with pytest.raises(WalletVerificationError, match="^challenge expired$"):
        verify(challenge, signature=evm_sign(account.key, challenge.message))


@pytest.mark.parametrize(
    "address",
    [
        "",
        "0x1234",
        "52908400098527886e0f7030069857d2e4169ee7",  # no 0x
        "0x52908400098527886e0F7030069857D2E4169EE7",  # mixed case with a wrong EIP-55 checksum
        "0x52908400098527886E0F7030069857D2E4169EEG",
        " 0x52908400098527886E0F7030069857D2E4169EE7",
        None,
    ],
)
def test_evm_normalize_address_refuses(address):
    with pytest.raises(WalletVerificationError, match="^not an EVM address$"):
        normalize_address("evm", address)


@pytest.mark.parametrize(
    "address", ["0x52908400098527886e0f7030069857d2e4169ee7", "0x52908400098527886E0F7030069857D2E4169EE7"]
)
def test_evm_normalize_address_checksums(address):
    assert normalize_address("evm", address) == "0x52908400098527886E0F7030069857D2E4169EE7"


@pytest.mark.parametrize("chain_id", ["0x1", "mainnet", "01", "", "1\nNonce: x"])
def test_evm_chain_id_must_be_decimal(chain_id):
    with pytest.raises(WalletVerificationError, match="invalid chain id"):
        challenge_for("evm", Account.create().address, chain_id=chain_id)


# --- Solana ---------------------------------------------------------------------------------------------------


def solana_wallet() -> tuple[SigningKey, str]:
    key = SigningKey.generate()
    return key, base58.b58encode(bytes(key.verify_key)).decode()


def solana_sign(key: SigningKey, message: str) -> bytes:
    return key.sign(message.encode()).signature


@pytest.mark.parametrize(
    "encode", [lambda raw: base58.b58encode(raw).decode(), lambda raw: base64.b64encode(raw).decode()]
)
def test_solana_signature_in_base58_or_base64_verifies(encode):
    key, address = solana_wallet()
    challenge = challenge_for("solana", address)
    assert challenge.message.startswith("privex.example wants you to sign in with your Solana account:\n")
    assert verify(challenge, signature=encode(solana_sign(key, challenge.message))) == address
    assert verify(challenge, signature=encode(solana_sign(key, challenge.message)), public_key=address) == address


def test_solana_signature_from_another_key_fails():
    _, address = solana_wallet()
    other, _ = solana_wallet()
    challenge = challenge_for("solana", address)
    signature = base58.b58encode(solana_sign(other, challenge.message)).decode()
    with pytest.raises(WalletVerificationError, match="^signature does not match the address$"):
        verify(challenge, signature=signature)


def test_solana_signature_of_another_message_fails():
    key, address = solana_wallet()
    challenge = challenge_for("solana", address)
    signature = base58.b58encode(solana_sign(key, challenge.message + " ")).decode()
    with pytest.raises(WalletVerificationError, match="does not match"):
        verify(challenge, signature=signature)


def test_solana_public_key_other_than_the_address_fails():
    key, address = solana_wallet()
    challenge = challenge_for("solana", address)
    signature = base58.b58encode(solana_sign(key, challenge.message)).decode()
    with pytest.raises(WalletVerificationError, match="public key does not match"):
        verify(challenge, signature=signature, public_key=solana_wallet()[1])


@pytest.mark.parametrize(
    "signature",
    [
        "",
        "garbage!!",
        base58.b58encode(b"\x01" * 63).decode(),
        base64.b64encode(b"\x01" * 65).decode(),
        (b"\x01" * 64).hex(),  # hex is neither base58 (of 64 bytes) nor base64 of 64 bytes
        "0" * 88,  # not base58; base64 of 66 bytes
        None,
    ],
)
def test_solana_malformed_signature_fails_cleanly(signature):
    challenge = challenge_for("solana", solana_wallet()[1])
    with pytest.raises(WalletVerificationError, match="malformed signature"):
        verify(challenge, signature=signature)


def test_solana_expired_challenge_fails():
    key, address = solana_wallet()
    challenge = expired("solana", address)
    with pytest.raises(WalletVerificationError, match="^challenge expired$"):
        verify(challenge, signature=base58.b58encode(solana_sign(key, challenge.message)).decode())


@pytest.mark.parametrize(
    "address",
    [
        "",
        base58.b58encode(b"\x01" * 31).decode(),
        base58.b58encode(b"\x01" * 33).decode(),
        base58.b58encode(b"\x01" * 32).decode() + "\n",  # b58decode would strip it
        "0" * 44,  # "0" is not in the base58 alphabet
        "é" * 44,
        None,
    ],
)
def test_solana_normalize_address_refuses(address):
    with pytest.raises(WalletVerificationError, match="^not a Solana address$"):
        normalize_address("solana", address)


# --- Cosmos ---------------------------------------------------------------------------------------------------


def cosmos_wallet(prefix: str = "cosmos") -> tuple[PrivateKey, str]:
    key = PrivateKey()
    digest = hashlib.new("ripemd160", hashlib.sha256(key.public_key.format()).digest()).digest()
    return key, bech32_encode(prefix, convertbits(digest, 8, 5))


def amino_doc(message: str, signer: str) -> bytes:
    """Written out as Keplr serialises it, independently of the module."""
    data = base64.b64encode(message.encode()).decode()
    return (
        '{"account_number":"0","chain_id":"","fee":{"amount":[],"gas":"0"},"memo":"","msgs":[{"type":'
        f'"sign/MsgSignData","value":{{"data":"{data}","signer":"{signer}"}}}}],"sequence":"0"}}'
    ).encode()


def keplr_sign(key: PrivateKey, message: str, signer: str) -> tuple[str, str]:
    """(signature, pub_key) as Keplr's signArbitrary returns them: base64 r||s and base64 compressed key."""
    compact = key.sign_recoverable(hashlib.sha256(amino_doc(message, signer)).digest(), hasher=None)[:64]
    return base64.b64encode(compact).decode(), base64.b64encode(key.public_key.format()).decode()


def test_amino_doc_is_canonical_json():
    doc = amino_doc("hi", "cosmos1x")
    assert doc == json.dumps(json.loads(doc), sort_keys=True, separators=(",", ":")).encode()


def test_cosmos_signature_verifies_and_returns_the_address():
    key, address = cosmos_wallet()
    challenge = challenge_for("cosmos", address)
    assert challenge.message.startswith("privex.example wants you to sign in with your Cosmos account:\n")
    assert "\nChain ID: cosmoshub-4\n" in challenge.message
    signature, public_key = keplr_sign(key, challenge.message, address)
    assert verify(challenge, signature=signature, public_key=public_key) == address


def test_cosmos_upper_case_address_is_lowered():
    key, address = cosmos_wallet("secret")
    challenge = challenge_for("cosmos", address.upper(), chain_id="secret-4")
    assert challenge.address == address
    signature, public_key = keplr_sign(key, challenge.message, address)
    assert verify(challenge, signature=signature, public_key=public_key) == address


def test_cosmos_address_with_another_prefix_is_refused():
    _, address = cosmos_wallet("secret")
    assert normalize_address("cosmos", address) == address
    assert normalize_address("cosmos", address, prefix="secret") == address
    with pytest.raises(WalletVerificationError, match="^not a cosmos address$"):
        normalize_address("cosmos", address, prefix="cosmos")


def test_cosmos_missing_public_key_fails():
    key, address = cosmos_wallet()
    challenge = challenge_for("cosmos", address)
    signature, _ = keplr_sign(key, challenge.message, address)
    with pytest.raises(WalletVerificationError, match="^public key required$"):
        verify(challenge, signature=signature)


def test_cosmos_public_key_of_another_account_fails_even_with_its_valid_signature():
    _, address = cosmos_wallet()
    other, _ = cosmos_wallet()
    challenge = challenge_for("cosmos", address)
    signature, public_key = keplr_sign(other, challenge.message, address)
    with pytest.raises(WalletVerificationError, match="^public key does not match the address$"):
        verify(challenge, signature=signature, public_key=public_key)


def test_cosmos_signature_of_another_message_fails():
    key, address = cosmos_wallet()
    challenge = challenge_for("cosmos", address)
    signature, public_key = keplr_sign(key, challenge.message.replace("cosmoshub-4", "osmosis-1"), address)
    with pytest.raises(WalletVerificationError, match="^signature does not match the address$"):
        verify(challenge, signature=signature, public_key=public_key)


def test_cosmos_high_s_signature_is_refused_like_the_cosmos_sdk_does():
    key, address = cosmos_wallet()
    challenge = challenge_for("cosmos", address)
    signature, public_key = keplr_sign(key, challenge.message, address)
    raw = base64.b64decode(signature)
    high_s = raw[:32] + (SECP256K1_ORDER - int.from_bytes(raw[32:], "big")).to_bytes(32, "big")
    with pytest.raises(WalletVerificationError, match="does not match"):
        verify(challenge, signature=base64.b64encode(high_s).decode(), public_key=public_key)


@pytest.mark.parametrize(
    ("signature", "public_key", "reason"),
    [
        ("", GOOD, "malformed signature"),
        ("!!!", GOOD, "malformed signature"),
        (base64.b64encode(b"\x01" * 63).decode(), GOOD, "malformed signature"),
        (base64.b64encode(b"\x01" * 65).decode(), GOOD, "malformed signature"),
        (base64.b64encode(b"\xff" * 64).decode(), GOOD, "malformed signature"),  # r, s above the curve order
        (base64.b64encode(b"\x00" * 64).decode(), GOOD, "does not match"),  # r = s = 0
        (None, GOOD, "malformed signature"),
        (GOOD, base64.b64encode(b"\x02" + b"\x00" * 32).decode(), "malformed public key"),  # not on the curve
        (GOOD, "not base64!", "malformed public key"),
        (GOOD, base64.b64encode(PrivateKey().public_key.format(compressed=False)).decode(), "malformed public key"),
    ],
)
def test_cosmos_malformed_input_fails_cleanly(signature, public_key, reason):
    key, address = cosmos_wallet()
    challenge = challenge_for("cosmos", address)
    good_signature, good_public_key = keplr_sign(key, challenge.message, address)
    signature = good_signature if signature is GOOD else signature
    public_key = good_public_key if public_key is GOOD else public_key
    with pytest.raises(WalletVerificationError, match=reason):
        verify(challenge, signature=signature, public_key=public_key)


def test_cosmos_expired_challenge_fails():
    key, address = cosmos_wallet()
    challenge = expired("cosmos", address)
    signature, public_key = keplr_sign(key, challenge.message, address)
    with pytest.raises(WalletVerificationError, match="^challenge expired$"):
        verify(challenge, signature=signature, public_key=public_key)


@pytest.mark.parametrize(
    "address",
    [
        "",
        "cosmos1",
        "cosmos1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq",  # bad checksum
        bech32_encode("cosmos", convertbits(b"\x01" * 32, 8, 5)),  # 32 bytes: a module account
        "0x52908400098527886E0F7030069857D2E4169EE7",
        None,
    ],
)
def test_cosmos_normalize_address_refuses(address):
    with pytest.raises(WalletVerificationError, match="^not a Cosmos address$"):
        normalize_address("cosmos", address)


def test_cosmos_mixed_case_address_is_refused():
    address = cosmos_wallet()[1]
    with pytest.raises(WalletVerificationError, match="not a Cosmos address"):
        normalize_address("cosmos", address[:10] + address[10:].upper())


# --- Shared ---------------------------------------------------------------------------------------------------


def test_unknown_provider_is_refused_everywhere():
    with pytest.raises(WalletVerificationError, match="^unknown wallet provider$"):
        normalize_address("bitcoin", "bc1q")
    with pytest.raises(WalletVerificationError, match="^unknown wallet provider$"):
        build_challenge(
            "bitcoin",
            "bc1q",
            domain="privex.example",
            uri="https://privex.example/login",
            chain_id="1",
            nonce="12345678",
            issued_at=datetime.now(timezone.utc),
            ttl=timedelta(minutes=1),
        )
    challenge = replace(challenge_for("evm", Account.create().address), provider="bitcoin")
    with pytest.raises(WalletVerificationError, match="^unknown wallet provider$"):
        verify(challenge, signature="0x")


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"issued_at": datetime(2026, 1, 1)}, "timezone-aware"),
        ({"ttl": timedelta(0)}, "ttl"),
        ({"nonce": "short"}, "nonce"),
        ({"nonce": "abc-def_ghi"}, "nonce"),  # secrets.token_urlsafe would do this
        ({"statement": "two\nlines"}, "statement"),
        ({"domain": "evil.example\nprivex.example"}, "domain"),
        ({"uri": ""}, "uri"),
    ],
)
def test_server_side_mistakes_raise_value_error(overrides, reason):
    with pytest.raises(ValueError, match=reason):
        challenge_for("evm", Account.create().address, **overrides)


def test_a_broken_challenge_still_raises_only_wallet_verification_error():
    challenge = replace(challenge_for("evm", Account.create().address), expires_at=datetime(2099, 1, 1))  # naive
    with pytest.raises(WalletVerificationError):
        verify(challenge, signature="0x" + "11" * 65)


def test_the_ripemd160_fallback_matches_known_vectors_and_hashlib():
    from privex.auth.wallets.cosmos import _ripemd160_pycryptodome as ripemd160

    assert ripemd160(b"").hex() == "9c1185a5c5e9fc54612808977ee8f548b2258d31"
    assert ripemd160(b"abc").hex() == "8eb208f7e05d987a9b044a8e98c6b087f15a0bfc"
    for size in (55, 56, 63, 64, 65, 119, 120):  # around the padding boundaries
        data = os.urandom(size)
        assert ripemd160(data) == hashlib.new("ripemd160", data).digest()


def test_cosmos_verifies_with_the_ripemd160_fallback(monkeypatch):
    from privex.auth.wallets import cosmos

    monkeypatch.setattr(cosmos, "_ripemd160", cosmos._ripemd160_pycryptodome)
    key, address = cosmos_wallet()
    challenge = challenge_for("cosmos", address)
    signature, public_key = keplr_sign(key, challenge.message, address)
    assert verify(challenge, signature=signature, public_key=public_key) == address


# --- Reading a message back -------------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", list(CHAIN_IDS))
@pytest.mark.parametrize("statement", ["Sign in to PrivexBot", ""])
def test_parse_message_reads_back_every_field_build_challenge_wrote(provider, statement):
    address = {"evm": Account.create().address, "solana": solana_wallet()[1], "cosmos": cosmos_wallet()[1]}[provider]
    challenge = challenge_for(provider, address, nonce="abc123XYZ789", statement=statement,
                              issued_at=datetime(2026, 11, 24, 21, 0, tzinfo=timezone.utc))
    assert parse_message(challenge.message) == {
        "domain": "privex.example", "account": {"evm": "Ethereum", "solana": "Solana", "cosmos": "Cosmos"}[provider],
        "address": address, "statement": statement or None, "uri": "https://privex.example/login", "version": "1",
        "chain_id": CHAIN_IDS[provider], "nonce": "abc123XYZ789", "issued_at": "2026-11-24T21:00:00Z",
        "expiration_time": "2026-11-24T21:05:00Z"}


@pytest.mark.parametrize("text", ["", "hello", None, 42, "privex.example wants you to sign in"])
def test_parse_message_refuses_other_text(text):
    assert parse_message(text) is None


def test_message_difference_names_the_first_field_that_differs():
    issued = challenge_for("evm", Account.create().address).message
    assert message_difference(issued, issued) is None
    both = issued.replace("privex.example wants", "evil.example wants").replace("Chain ID: 1", "Chain ID: 5")
    assert message_difference(issued, both) == \
        "the signed message's domain is 'evil.example', not 'privex.example' as issued"
    assert message_difference(issued, issued.replace("Chain ID: 1", "Chain ID: 5")) == \
        "the signed message's chain ID is '5', not '1' as issued"
    without_statement = issued.replace("Sign in to PrivexBot\n", "")
    assert message_difference(issued, without_statement) == \
        "the signed message's statement is missing, not 'Sign in to PrivexBot' as issued"
    assert "not a sign-in message" in message_difference(issued, issued + "\nResources:")
    long_domain = "x" * 500 + issued[issued.index(" wants"):]
    assert len(message_difference(issued, long_domain)) < 200  # a value is shown shortened
