"""The wheel as users get it: built from the tree, installed into a fresh virtualenv, run from there.

Slow (a pip install with every dependency, from PyPI or pip's cache), so the
wheel and its virtualenv are built once per session and shared with
tests/test_deploy.py through :func:`installed_wheel`.
"""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from uptimed import __version__

ROOT = Path(__file__).resolve().parent.parent
BUILTIN_CHANNELS = {
    "email": "uptimed.channels.email:EmailChannel",
    "webhook": "uptimed.channels.webhook:WebhookChannel",
    "slack": "uptimed.channels.slack:SlackChannel",
    "discord": "uptimed.channels.discord:DiscordChannel",
    "telegram": "uptimed.channels.telegram:TelegramChannel",
}
BUILTIN_KINDS = {
    "http": "uptimed.probe.http:HttpKind",
    "tcp": "uptimed.probe.tcp:TcpKind",
    "ping": "uptimed.probe.ping:PingKind",
    "dns": "uptimed.probe.dns:DnsKind",
    "tls": "uptimed.probe.tls:TlsKind",
    "postgres": "uptimed.probe.postgres:PostgresKind",
    "redis": "uptimed.probe.redis:RedisKind",
    "heartbeat": "uptimed.probe.heartbeat:HeartbeatKind",
}

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class InstalledWheel:
    """The built wheel and a virtualenv with it (and its dependencies) installed."""

    wheel: Path
    venv: Path

    @property
    def uptimed(self) -> Path:
        return self.venv / "bin" / "uptimed"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def env(self) -> dict[str, str]:
        """A clean environment: no UPTIMED_* overrides, nothing that would import the source tree."""
        drop = ("UPTIMED_", "PYTHON", "VIRTUAL_ENV", "NOTIFY_SOCKET", "WATCHDOG_")
        env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
        return {**env, "PATH": f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"}

    def run(self, *args: str | Path, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``uptimed ARGS`` from the virtualenv, outside the source tree."""
        return subprocess.run(
            [str(self.uptimed), *map(str, args)],
            cwd=cwd,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


_installed: InstalledWheel | None = None

# The build backend and the dependencies come from a wheelhouse beside the
# local services (git-ignored): offline when it has them (~6 s instead of ~25 s),
# and only what it lacks is fetched from PyPI into it.
WHEELHOUSE = Path(os.environ.get("UPTIMED_DATA_DIR") or ROOT / ".data") / "wheelhouse"
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
OFFLINE = ["--no-index", "--find-links", str(WHEELHOUSE)]


def build_wheel(source: Path, dest: Path) -> Path:
    """``pip wheel`` of the project in ``source``; returns the wheel."""
    build = [*PIP, "wheel", "--no-deps", "-q", "-w", str(dest), str(source)]
    if _run([*build, *OFFLINE], check=False):
        backend = tomllib.loads((source / "pyproject.toml").read_text())["build-system"]["requires"]
        _run([*PIP, "download", "-q", "-d", str(WHEELHOUSE), *backend])
        _run([*build, *OFFLINE])
    (wheel,) = dest.glob("uptimed-*.whl")
    return wheel


def installed_wheel(tmp_path_factory: pytest.TempPathFactory) -> InstalledWheel:
    """The wheel built from the tree, installed into a fresh virtualenv, once per session."""
    global _installed
    if _installed is None:
        base = tmp_path_factory.mktemp("packaging")
        wheel = build_wheel(ROOT, base / "dist")
        venv = base / "venv"
        # No pip inside the venv (ensurepip costs seconds): this pip installs into it through --python.
        _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
        # No bytecode compiling at install: the commands below compile only what they import.
        install = [*PIP, "--python", str(venv / "bin" / "python"), "install", "-q", "--no-compile", str(wheel)]
        if _run([*install, *OFFLINE], check=False):
            _fetch_dependencies(wheel)
            _run([*install, *OFFLINE])
        _installed = InstalledWheel(wheel, venv)
    return _installed


def _fetch_dependencies(wheel: Path) -> None:
    """Download what ``wheel`` needs into the wheelhouse, but not the wheel itself.

    An uptimed wheel left there would be taken as "already downloaded" next
    time, and its older dependency list resolved instead of the new one's.
    """
    _run([*PIP, "download", "-q", "-d", str(WHEELHOUSE), str(wheel)])
    for stale in WHEELHOUSE.glob("uptimed-*.whl"):
        stale.unlink()


def _run(argv: list[str], *, check: bool = True) -> int:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    if result.returncode and check:
        raise AssertionError(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.returncode


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> InstalledWheel:
    return installed_wheel(tmp_path_factory)


def test_wheel_holds_the_schema_package_data_and_channel_entry_points(installed: InstalledWheel) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
        assert wheel.read("uptimed/schema.sql") == (ROOT / "schema.sql").read_bytes()
        steps = sorted((ROOT / "migrations").glob("[0-9]*.sql"))
        assert steps, "the migration steps are found"
        for step in steps:
            assert wheel.read(f"uptimed/migrations/{step.name}") == step.read_bytes()
        # Every file the package ships beside its modules (web assets among them) is in the wheel.
        data = {
            p.relative_to(ROOT).as_posix()
            for p in (ROOT / "uptimed").rglob("*")
            if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
        }
        assert data <= names, f"missing from the wheel: {sorted(data - names)}"
        dist_info = f"uptimed-{__version__}.dist-info"
        entry_points = configparser.ConfigParser(delimiters=("=",))
        entry_points.optionxform = str  # type: ignore[assignment,method-assign]
        entry_points.read_string(wheel.read(f"{dist_info}/entry_points.txt").decode())
        metadata = wheel.read(f"{dist_info}/METADATA").decode()
    assert {k: v.strip() for k, v in entry_points["uptimed.channels"].items()} == BUILTIN_CHANNELS
    assert {k: v.strip() for k, v in entry_points["uptimed.kinds"].items()} == BUILTIN_KINDS
    assert entry_points["console_scripts"]["uptimed"].strip() == "uptimed.cli:main"
    assert f"\nVersion: {__version__}\n" in metadata
    assert not any(name.startswith(("tests/", "plugins/", "scripts/", "bench/")) for name in names)


def test_installed_uptimed_runs_from_a_fresh_virtualenv(installed: InstalledWheel, tmp_path: Path) -> None:
    version = installed.run("--version", cwd=tmp_path)
    assert (version.returncode, version.stdout.strip()) == (0, f"uptimed {__version__}")

    # The package imported is the installed one, and it finds its schema inside itself.
    where = subprocess.run(
        [
            str(installed.python),
            "-c",
            (
                "import uptimed, importlib.resources as r; from uptimed.store.database import schema_sql, steps;"
                "print(uptimed.__file__); print(r.files('uptimed').joinpath('schema.sql').is_file());"
                "print(len(schema_sql())); print(','.join(s.name for s in steps()))"
            ),
        ],
        cwd=tmp_path,
        env=installed.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    module, packaged, length, step_names = where.stdout.split()
    assert Path(module).is_relative_to(installed.venv), module
    assert (packaged, int(length)) == ("True", len((ROOT / "schema.sql").read_text(encoding="utf-8")))
    assert step_names.split(",") == sorted(p.name for p in (ROOT / "migrations").glob("[0-9]*.sql"))

    check = installed.run("check-config", ROOT / "config.example.toml", cwd=tmp_path)
    assert check.returncode == 0, check.stderr
    assert check.stdout.startswith(f"{ROOT / 'config.example.toml'}: OK (7 monitors, 1 integration")

    channels = installed.run("channels", cwd=tmp_path)
    assert channels.returncode == 0, channels.stderr
    listed = {line.split()[0]: line for line in channels.stdout.splitlines() if line and not line[0].isspace()}
    assert set(BUILTIN_CHANNELS) <= set(listed)
    for name in BUILTIN_CHANNELS:
        assert listed[name] == f"{name}  (uptimed {__version__})"
    assert "BROKEN" not in channels.stdout

    kinds = installed.run("kinds", cwd=tmp_path)  # their libraries (icmplib, dnspython, cronsim) came with the wheel
    assert kinds.returncode == 0, kinds.stderr
    listed = {line.split()[0] for line in kinds.stdout.splitlines() if line and not line[0].isspace()}
    assert listed == set(BUILTIN_KINDS) and "BROKEN" not in kinds.stdout
