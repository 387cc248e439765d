"""EVM wallets (MetaMask and alike): EIP-55 addresses and EIP-191 ``personal_sign`` over an EIP-4361 message.

The signer's address is recovered from the 65-byte signature, so no public key is needed. Contract wallets
(EIP-1271) cannot sign this way and are not supported.
"""

from __future__ import annotations

import re

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import is_checksum_address, to_checksum_address

from ._base import Challenge, WalletVerificationError

ACCOUNT = "Ethereum"

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_SIGNATURE = re.compile(r"0x[0-9a-fA-F]{130}")  # r (32) || s (32) || v (1)
_CHAIN_ID = re.compile(r"[1-9][0-9]*")  # EIP-155 decimal; the caller converts MetaMask's hex eth_chainId


def normalize_address(address: str) -> str:
    """The EIP-55 checksum form of ``address``."""
    if not isinstance(address, str) or not _ADDRESS.fullmatch(address):
        raise WalletVerificationError("not an EVM address")
    digits = address[2:]
    # Mixed case means "checksummed": a wrong checksum is a mistyped address (eth_utils 6's is_address no
    # longer checks this, so it is done here).
    if digits not in (digits.lower(), digits.upper()) and not is_checksum_address(address):
        raise WalletVerificationError("not an EVM address")
    return to_checksum_address(address)


def check_chain_id(chain_id: str) -> str:
    if not isinstance(chain_id, str) or not _CHAIN_ID.fullmatch(chain_id):
        raise WalletVerificationError("invalid chain id")
    return chain_id


def verify(challenge: Challenge, signature: str, public_key: str | None) -> str:
    """The checksum address that signed ``challenge.message``; ``public_key`` is not used (it is recovered)."""
    if not isinstance(signature, str) or not _SIGNATURE.fullmatch(signature):
        raise WalletVerificationError("malformed signature")
    try:
        recovered = Account.recover_message(encode_defunct(text=challenge.message), signature=signature)
    except Exception as error:  # eth_keys' BadSignature (not a ValueError), ValueError for a bad v, ...
        raise WalletVerificationError("malformed signature") from error
    if recovered.lower() != challenge.address.lower():
        raise WalletVerificationError("signature does not match the address")
    return recovered
