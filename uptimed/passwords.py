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


COMMON = frozenset(
    [
        "password",
        "password1",
        "password12",
        "password123",
        "password1234",
        "passw0rd",
        "p@ssw0rd",
        "p@ssword",
        "passwort",
        "motdepasse",
        "12345678",
        "123456789",
        "1234567890",
        "12345678910",
        "87654321",
        "11111111",
        "00000000",
        "12341234",
        "11223344",
        "12121212",
        "123123123",
        "qwertyui",
        "qwertyuiop",
        "qwerty123",
        "qwerty12",
        "1q2w3e4r",
        "1qaz2wsx",
        "zaq12wsx",
        "qazwsxedc",
        "asdfghjkl",
        "asdfasdf",
        "azertyuiop",
        "iloveyou",
        "iloveyou1",
        "letmein1",
        "letmein123",
        "welcome1",
        "welcome123",
        "sunshine",
        "princess",
        "football",
        "baseball",
        "basketball",
        "superman",
        "batman123",
        "trustno1",
        "monkey123",
        "dragon123",
        "master123",
        "shadow123",
        "starwars",
        "whatever",
        "computer",
        "internet",
        "michael1",
        "jennifer",
        "jordan23",
        "charlie1",
        "liverpool",
        "chelsea1",
        "arsenal1",
        "changeme",
        "changeme1",
        "changeit",
        "default1",
        "administrator",
        "admin123",
        "admin1234",
        "adminadmin",
        "rootroot",
        "root1234",
        "toortoor",
        "secret123",
        "abcd1234",
        "abc12345",
        "abcdefgh",
        "aa123456",
        "a1234567",
        "q1w2e3r4",
        "1234qwer",
        "qwer1234",
        "test1234",
        "testtest",
        "guest123",
        "uptimed",
        "uptimed1",
        "uptimed123",
        "monitoring",
        "monitor1",
        "letmeinnow",
        "access14",
        "freedom1",
        "mustang1",
        "killer12",
        "hello123",
        "helloworld",
        "loveme123",
    ]
)
"""Passwords everyone tries first: refused whatever their length (compared in lower case)."""


class WeakPassword(ValueError):
    """The password is too short, too long, too common, or not text a person can type."""


def check_password(password: str, *, username: str | None = None) -> None:
    """:class:`WeakPassword` with the reason when ``password`` cannot be used (by ``username``, when given)."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"a password has at most {MAX_LENGTH} characters")
    if "\x00" in password:
        raise WeakPassword("a password may not contain NUL characters")
    if password.lower() in COMMON or (username and password.lower() in (username.lower(), username.lower() * 2)):
        raise WeakPassword("that password is one of the first ones anybody tries: choose another")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _derive(password: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=1 << log2_n, r=r, p=p, maxmem=_MAXMEM, dklen=_KEY_BYTES)


def hash_password(password: str, *, username: str | None = None) -> str:
    """A new salted hash of ``password`` (checked with :func:`check_password` first)."""
    check_password(password, username=username)
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


async def hash_password_async(password: str, *, username: str | None = None) -> str:
    return await anyio.to_thread.run_sync(lambda: hash_password(password, username=username))


async def verify_async(password: str, stored: str | None) -> bool:
    return await anyio.to_thread.run_sync(verify, password, stored)
