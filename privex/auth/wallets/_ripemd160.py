"""Pure-Python RIPEMD-160, used only where hashlib lacks it (OpenSSL 3.0.0-3.0.6 moved it to the legacy provider).

Cosmos addresses need it once per sign-in, on 32 bytes, so speed does not matter. Follows the reference
description by Dobbertin, Bosselaers and Preneel (1996).
"""

from __future__ import annotations

import struct

# Message word order (r, r') and rotation amounts (s, s') of the five rounds of the left and right lines.
_R = (
    list(range(16))
    + [7, 4, 13, 1, 10, 6, 15, 3, 12, 0, 9, 5, 2, 14, 11, 8]
    + [3, 10, 14, 4, 9, 15, 8, 1, 2, 7, 0, 6, 13, 11, 5, 12]
    + [1, 9, 11, 10, 0, 8, 12, 4, 13, 3, 7, 15, 14, 5, 6, 2]
    + [4, 0, 5, 9, 7, 12, 2, 10, 14, 1, 3, 8, 11, 6, 15, 13]
)
_R2 = (
    [5, 14, 7, 0, 9, 2, 11, 4, 13, 6, 15, 8, 1, 10, 3, 12]
    + [6, 11, 3, 7, 0, 13, 5, 10, 14, 15, 8, 12, 4, 9, 1, 2]
    + [15, 5, 1, 3, 7, 14, 6, 9, 11, 8, 12, 2, 10, 0, 4, 13]
    + [8, 6, 4, 1, 3, 11, 15, 0, 5, 12, 2, 13, 9, 7, 10, 14]
    + [12, 15, 10, 4, 1, 5, 8, 7, 6, 2, 13, 14, 0, 3, 9, 11]
)
_S = (
    [11, 14, 15, 12, 5, 8, 7, 9, 11, 13, 14, 15, 6, 7, 9, 8]
    + [7, 6, 8, 13, 11, 9, 7, 15, 7, 12, 15, 9, 11, 7, 13, 12]
    + [11, 13, 6, 7, 14, 9, 13, 15, 14, 8, 13, 6, 5, 12, 7, 5]
    + [11, 12, 14, 15, 14, 15, 9, 8, 9, 14, 5, 6, 8, 6, 5, 12]
    + [9, 15, 5, 11, 6, 8, 13, 12, 5, 12, 13, 14, 11, 8, 5, 6]
)
_S2 = (
    [8, 9, 9, 11, 13, 15, 15, 5, 7, 7, 8, 11, 14, 14, 12, 6]
    + [9, 13, 15, 7, 12, 8, 9, 11, 7, 7, 12, 7, 6, 15, 13, 11]
    + [9, 7, 15, 11, 8, 6, 6, 14, 12, 13, 5, 14, 13, 13, 7, 5]
    + [15, 5, 8, 11, 14, 14, 6, 14, 6, 9, 12, 9, 12, 5, 15, 8]
    + [8, 5, 12, 9, 12, 5, 14, 6, 8, 13, 6, 5, 15, 13, 11, 11]
)
_K = (0x00000000, 0x5A827999, 0x6ED9EBA1, 0x8F1BBCDC, 0xA953FD4E)
_K2 = (0x50A28BE6, 0x5C4DD124, 0x6D703EF3, 0x7A6D76E9, 0x00000000)
_MASK = 0xFFFFFFFF


def _f(round_: int, x: int, y: int, z: int) -> int:
    if round_ == 0:
        return x ^ y ^ z
    if round_ == 1:
        return (x & y) | (~x & z)
    if round_ == 2:
        return (x | ~y) ^ z
    if round_ == 3:
        return (x & z) | (y & ~z)
    return x ^ (y | ~z)


def _rol(value: int, bits: int) -> int:
    return ((value << bits) | (value >> (32 - bits))) & _MASK


def _compress(h: list[int], block: bytes) -> None:
    x = struct.unpack("<16I", block)
    a, b, c, d, e = h
    a2, b2, c2, d2, e2 = h
    for j in range(80):
        round_ = j // 16
        t = _rol((a + _f(round_, b, c, d) + x[_R[j]] + _K[round_]) & _MASK, _S[j]) + e
        a, e, d, c, b = e, d, _rol(c, 10), b, t & _MASK
        # The right line applies the boolean functions in reverse order.
        t = _rol((a2 + _f(4 - round_, b2, c2, d2) + x[_R2[j]] + _K2[round_]) & _MASK, _S2[j]) + e2
        a2, e2, d2, c2, b2 = e2, d2, _rol(c2, 10), b2, t & _MASK
    h[:] = [
        (h[1] + c + d2) & _MASK,
        (h[2] + d + e2) & _MASK,
        (h[3] + e + a2) & _MASK,
        (h[4] + a + b2) & _MASK,
        (h[0] + b + c2) & _MASK,
    ]


def ripemd160(data: bytes) -> bytes:
    h = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0]
    # MD4-style padding: 0x80, zeros to 56 mod 64, then the bit length as a little-endian 64-bit number.
    padded = data + b"\x80" + b"\x00" * ((55 - len(data)) % 64) + struct.pack("<Q", (len(data) * 8) & (2**64 - 1))
    for start in range(0, len(padded), 64):
        _compress(h, padded[start : start + 64])
    return struct.pack("<5I", *h)
