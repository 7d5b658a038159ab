"""`uptimed user passwd NAME`: sets the password the web pages sign in with."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from tests.support import Stack
from tests.web.fixtures import Person, Site
from uptimed.cli import main

pytestmark = pytest.mark.usefixtures("clean_env")


async def passwd(stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, name: str, typed: str):
    config = tmp_path / "uptimed.toml"
    config.write_text(stack.toml())
    monkeypatch.setattr("sys.stdin", io.StringIO(typed + "\n"))
    code = await asyncio.to_thread(main, ["user", "passwd", name, "--password-stdin", "-c", str(config)])
    out, err = capsys.readouterr()
    return code, out, err


async def test_passwd_sets_a_password_that_signs_in_and_ends_old_sessions(
    site: Site, alice: Person, stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    code, out, _ = await passwd(stack, tmp_path, monkeypatch, capsys, "alice", "a brand new passphrase")

    assert code == 0
    assert "password of alice set; 1 web session signed out" in out
    assert (await alice.get("/")).status_code == 303  # the old session ended
    assert (await site.sign_in(site.client(), "alice", "a brand new passphrase")).status_code == 303
    stored = await site.pool.fetchval("SELECT password_hash FROM users WHERE username = 'alice'")
    assert stored.startswith("scrypt$") and "a brand new passphrase" not in stored


async def test_passwd_refuses_a_short_password_and_changes_nothing(
    site: Site, alice: Person, stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    before = await site.pool.fetchval("SELECT password_hash FROM users WHERE username = 'alice'")
    code, _, err = await passwd(stack, tmp_path, monkeypatch, capsys, "alice", "short")

    assert code == 1
    assert "at least 8 characters" in err and "nothing changed" in err
    assert await site.pool.fetchval("SELECT password_hash FROM users WHERE username = 'alice'") == before
    assert (await alice.get("/")).status_code == 200


async def test_passwd_names_an_unknown_user(
    site: Site, stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    code, _, err = await passwd(stack, tmp_path, monkeypatch, capsys, "nobody", "long enough password")
    assert code == 1
    assert "no user named 'nobody'" in err
