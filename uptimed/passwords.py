"""Password hashes for web sign-in: scrypt from the standard library, no extra dependency.

A hash reads ``scrypt$<log2 n>$<r>$<p>$<salt>$<key>`` (base64 without
padding), so the cost can rise later without invalidating stored hashes:
:func:`verify` reads the parameters from the hash itself. Hashing takes
tens of milliseconds on purpose; a caller on the event loop verifies in a
thread (:func:`verify_async`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

import anyio

MIN_LENGTH = 8
MAX_LENGTH = 1024
"""Long enough for any passphrase, short enough that hashing stays cheap to ask for."""

_LOG2_N, _R, _P = 15, 8, 1  # 32 MiB of memory per hash; OWASP's scrypt minimum is 2^17 / 8 / 1 at 128 MiB
_KEY_BYTES = 32
_MAXMEM = 256 * 1024 * 1024

# Verified against when a username does not exist, so that a wrong name and a
# wrong password take the same time.
_DUMMY = f"scrypt${_LOG2_N}${_R}${_P}$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"


class WeakPassword(ValueError):
    """The password is too short, too long, or not text a person can type."""


def check_password(password: str) -> None:
    """:class:`WeakPassword` with the reason when ``password`` cannot be used."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"a password has at most {MAX_LENGTH} characters")
    if "\x00" in password:
        raise WeakPassword("a password may not contain NUL characters")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _derive(password: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=1 << log2_n, r=r, p=p, maxmem=_MAXMEM, dklen=_KEY_BYTES)


def hash_password(password: str) -> str:
    """A new salted hash of ``password`` (checked with :func:`check_password` first)."""
    check_password(password)
    salt = os.urandom(16)
    key = _derive(password, salt, _LOG2_N, _R, _P)
    return f"scrypt${_LOG2_N}${_R}${_P}${_b64(salt)}${_b64(key)}"


def verify(password: str, stored: str | None) -> bool:
    """Whether ``password`` matches ``stored``; False (after the same work) when there is no hash."""
    try:
        scheme, log2_n, r, p, salt, key = (stored or _DUMMY).split("$")
        if scheme != "scrypt":
            return False
        derived = _derive(password[:MAX_LENGTH], _unb64(salt), int(log2_n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return stored is not None and hmac.compare_digest(derived, _unb64(key))


async def verify_async(password: str, stored: str | None) -> bool:
    return await anyio.to_thread.run_sync(verify, password, stored)
