"""deploy/uptimed.service, the Dockerfile and deploy/compose.yaml, tested without systemd as PID 1 or a Docker engine.

- The unit: ``systemd-analyze verify`` and ``security --offline``, the
  directives the daemon relies on, and the daemon itself (the installed
  wheel, against the real services) run under the unit's seccomp sandbox
  (SystemCallFilter, MemoryDenyWriteExecute, RestrictAddressFamilies,
  RestrictNamespaces, NoNewPrivileges, LimitNOFILE, UMask), applied here by
  this file with libseccomp as systemd applies it, with a stand-in for
  systemd's notify socket. The unit's mount, user and capability settings
  need systemd itself and are not exercised.
- The Dockerfile: parsed (dockerfile-parse); the builder stage's COPY list,
  filtered by .dockerignore, builds the wheel; the HEALTHCHECK command run
  against a local /healthz; ENTRYPOINT + CMD run from a plain virtualenv.
- compose.yaml: its structure, and its uptimed config loaded as the
  container would (with the environment compose gives it).
"""

from __future__ import annotations

import asyncio
import base64
import ctypes
import ctypes.util
import errno
import http.server
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "deploy" / "uptimed.service"
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "deploy" / "compose.yaml"
ENV_EXAMPLE = ROOT / "deploy" / "uptimed.env.example"

# Where the unit expects things on a real host; the tests put them elsewhere.
UNIT_UPTIMED = "/opt/uptimed/bin/uptimed"
UNIT_CONFIG = "/etc/uptimed/uptimed.toml"
IMAGE_CONFIG = "/etc/uptimed/uptimed.toml"


def unit_directives(path: Path = UNIT) -> dict[str, list[str]]:
    """``Section.Key`` -> every value given, in order (``SystemCallFilter=`` may repeat)."""
    directives: dict[str, list[str]] = {}
    section = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        directives.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return directives


def systemd_analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed (Debian: apt-get install systemd); the unit is not verified")
    return tool


# ---------------------------------------------------------------- the unit


def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify insists that every Exec*= binary exists, and /opt/uptimed is not
    # installed here: the copy points at this environment's own uptimed
    # (same console script, same arguments). It works without systemd as PID 1.
    here = Path(sys.executable).parent / "uptimed"
    assert here.exists(), f"{here}: uptimed is not installed in the test environment"
    unit = tmp_path / "uptimed.service"
    unit.write_text(UNIT.read_text().replace(UNIT_UPTIMED, str(here)))
    result = subprocess.run(
        [systemd_analyze(), "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr + result.stdout


def test_unit_is_hardened(tmp_path: Path) -> None:
    unit = tmp_path / "uptimed.service"
    unit.write_text(UNIT.read_text().replace(UNIT_UPTIMED, "/bin/true"))
    result = subprocess.run(
        [systemd_analyze(), "security", "--offline=yes", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    match = re.search(r"Overall exposure level for uptimed\.service: ([\d.]+)", result.stdout)
    assert match, result.stdout + result.stderr
    # 0 is a sealed box, 10 an unprotected service; what stays open is the network and User= itself.
    assert float(match[1]) <= 2.0, result.stdout


def test_unit_matches_what_the_daemon_does() -> None:
    from uptimed.cli import EXIT_CONFIG
    from uptimed.config import ProbeSettings
    from uptimed.daemon import STOP_GRACE_S

    unit = {key: values[-1] for key, values in unit_directives().items()}
    service = {key.removeprefix("Service."): value for key, value in unit.items() if key.startswith("Service.")}
    # The daemon sends READY/RELOADING/STOPPING/WATCHDOG itself, from its main process.
    assert (service["Type"], service["NotifyAccess"]) == ("notify", "main")
    assert _seconds(service["WatchdogSec"]) >= 10
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["ExecStartPre"] == f"{UNIT_UPTIMED} check-config {UNIT_CONFIG}"
    assert service["ExecStart"] == f"{UNIT_UPTIMED} run -c {UNIT_CONFIG}"
    assert service["EnvironmentFile"] == "-/etc/uptimed/uptimed.env"
    # Room for the drain and for closing the connections after it.
    assert _seconds(service["TimeoutStopSec"]) > STOP_GRACE_S + 5
    assert service["Restart"] == "on-failure" and service["RestartPreventExitStatus"] == str(EXIT_CONFIG)
    assert (service["User"], service["Group"]) == ("uptimed", "uptimed")
    assert int(service["LimitNOFILE"]) >= 4 * ProbeSettings.model_fields["concurrency"].default
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectKernelLogs": "yes",
        "ProtectControlGroups": "yes",
        "RestrictNamespaces": "yes",
        "LockPersonality": "yes",
        "MemoryDenyWriteExecute": "yes",
        "SystemCallArchitectures": "native",
        "CapabilityBoundingSet": "",
        "StateDirectory": "uptimed",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    }.items():
        assert service.get(key) == value, f"{key}={service.get(key)!r}, expected {value!r}"


def _seconds(value: str) -> float:
    units = {"ms": 0.001, "s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600}
    return sum(float(n) * units[u or "s"] for n, u in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value))


def test_env_example_names_real_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from uptimed.config import load_settings

    variables = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if match := re.fullmatch(r"#?(UPTIMED_[A-Z_]+)=(.*)", line.strip()):
            variables[match[1]] = match[2]
    assert {"UPTIMED_DATABASE__DSN", "UPTIMED_KAFKA__SASL_PASSWORD", "UPTIMED_SMTP__PASSWORD"} <= set(variables)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(ROOT / "config.example.toml")
    assert settings.database.dsn.get_secret_value() == variables["UPTIMED_DATABASE__DSN"]
    assert settings.kafka.sasl_password.get_secret_value() == variables["UPTIMED_KAFKA__SASL_PASSWORD"]


def test_production_kafka_example_is_valid_once_uncommented() -> None:
    import tomllib

    from uptimed.config import KafkaSettings

    text = (ROOT / "config.example.toml").read_text()
    section = text[text.index("\n# [kafka]\n") + 1 :]
    uncommented = [re.sub(r"^# ?", "", line) for line in section.splitlines()]
    kafka = KafkaSettings(**tomllib.loads("\n".join(uncommented))["kafka"])
    assert (kafka.replication_factor, kafka.min_insync_replicas) == (3, 2)
    assert (kafka.security_protocol, kafka.sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-512")
    assert kafka.ssl_cafile and kafka.sasl_password is None  # the password comes from the environment


# ------------------------------------------- the daemon in the unit's sandbox


def syscall_groups(tool: str) -> dict[str, list[str]]:
    """systemd's named syscall sets (``@system-service`` ...), as this systemd defines them."""
    out = subprocess.run([tool, "syscall-filter", "--no-pager"], capture_output=True, text=True, check=True).stdout
    groups: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in out.splitlines():
        if line.startswith("@"):
            current = groups.setdefault(line.strip(), [])
        elif line.startswith("    ") and current is not None and not line.strip().startswith("#"):
            current.append(line.strip())
        elif line and not line.startswith(" "):
            current = None
    return groups


def allowed_syscalls(filters: list[str], groups: dict[str, list[str]]) -> list[str]:
    """The allow-list ``SystemCallFilter=`` lines make: the first allows, ``~`` ones remove; @default always."""

    def expand(names: list[str]) -> set[str]:
        out: set[str] = set()
        for name in names:
            out |= expand(groups[name]) if name.startswith("@") else {name}
        return out

    allowed: set[str] = set()
    for line in filters:
        if line.startswith("~"):
            allowed -= expand(line[1:].split())
        else:
            allowed |= expand(line.split())
    return sorted(allowed | expand(["@default"]))


def sandbox_spec(tool: str) -> dict[str, Any]:
    """What the unit asks the kernel to enforce, in the terms :func:`enter_sandbox` applies."""
    unit = unit_directives()
    service = {key.removeprefix("Service."): values for key, values in unit.items() if key.startswith("Service.")}
    assert service["SystemCallArchitectures"] == ["native"]  # libseccomp's default: the native ABI only
    return {
        "allowed": allowed_syscalls(service["SystemCallFilter"], syscall_groups(tool)),
        "errno": getattr(errno, service["SystemCallErrorNumber"][-1]),
        "families": [getattr(socket, name) for name in service["RestrictAddressFamilies"][-1].split()],
        "no_new_privileges": service["NoNewPrivileges"] == ["yes"],
        "deny_write_execute": service["MemoryDenyWriteExecute"] == ["yes"],
        "restrict_namespaces": service["RestrictNamespaces"] == ["yes"],
        "nofile": int(service["LimitNOFILE"][-1]),
        "umask": int(service["UMask"][-1], 8),
    }


class _ArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


_ALLOW = 0x7FFF0000
_CMP_EQ, _CMP_GE, _CMP_MASKED_EQ = 4, 5, 7
_PR_SET_NO_NEW_PRIVS = 38
_CLONE_NEW = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)
_AF_MAX = 46


def enter_sandbox(spec: dict[str, Any]) -> None:
    """Apply the unit's kernel-enforced restrictions to this process, as systemd 252 does before exec.

    Two seccomp filters, like systemd's: the syscall allow-list (others fail
    with SystemCallErrorNumber=), and one for the argument checks of
    MemoryDenyWriteExecute=, RestrictAddressFamilies= and RestrictNamespaces=.
    """
    import resource

    os.umask(spec["umask"])
    # systemd raises the limit as root; without CAP_SYS_RESOURCE (this machine) the hard limit caps it.
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nofile = spec["nofile"] if hard == resource.RLIM_INFINITY else min(spec["nofile"], hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
    libc = ctypes.CDLL(None, use_errno=True)
    if spec["no_new_privileges"] and libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0):
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
    lib = ctypes.CDLL(ctypes.util.find_library("seccomp") or "libseccomp.so.2", use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.POINTER(_ArgCmp),
    ]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]

    def fail_with(code: int) -> int:
        return 0x00050000 | code  # SCMP_ACT_ERRNO

    def rule(ctx: int, action: int, name: str, *compare: tuple[int, int, int, int]) -> None:
        number = lib.seccomp_syscall_resolve_name(name.encode())
        if number < 0:
            return  # not a syscall of this architecture
        args = (_ArgCmp * len(compare))(*[_ArgCmp(*c) for c in compare]) if compare else None
        if (rc := lib.seccomp_rule_add_array(ctx, action, number, len(compare), args)) < 0:
            raise OSError(-rc, f"seccomp rule for {name}")

    def load(ctx: int) -> None:
        if (rc := lib.seccomp_load(ctx)) < 0:
            raise OSError(-rc, "seccomp_load")
        lib.seccomp_release(ctx)

    checks = lib.seccomp_init(_ALLOW)
    if spec["deny_write_execute"]:
        wx, x = 0x2 | 0x4, 0x4  # PROT_WRITE | PROT_EXEC, PROT_EXEC
        rule(checks, fail_with(errno.EPERM), "mmap", (2, _CMP_MASKED_EQ, wx, wx))
        rule(checks, fail_with(errno.EPERM), "mprotect", (2, _CMP_MASKED_EQ, x, x))
        rule(checks, fail_with(errno.EPERM), "pkey_mprotect", (2, _CMP_MASKED_EQ, x, x))
        rule(checks, fail_with(errno.EPERM), "shmat", (2, _CMP_MASKED_EQ, 0o100000, 0o100000))  # SHM_EXEC
    for family in range(_AF_MAX):
        if family not in spec["families"]:
            rule(checks, fail_with(errno.EAFNOSUPPORT), "socket", (0, _CMP_EQ, family, 0))
    rule(checks, fail_with(errno.EAFNOSUPPORT), "socket", (0, _CMP_GE, _AF_MAX, 0))
    if spec["restrict_namespaces"]:
        rule(checks, fail_with(errno.EPERM), "unshare")
        rule(checks, fail_with(errno.EPERM), "setns")
        rule(checks, fail_with(errno.ENOSYS), "clone3")  # glibc falls back to clone, checked below
        for flag in _CLONE_NEW:
            rule(checks, fail_with(errno.EPERM), "clone", (0, _CMP_MASKED_EQ, flag, flag))
    load(checks)

    allow_list = lib.seccomp_init(fail_with(spec["errno"]))
    for name in spec["allowed"]:
        rule(allow_list, _ALLOW, name)
    load(allow_list)
    if spec["deny_write_execute"]:
        libc.prctl(65, 1, 0, 0, 0)  # PR_SET_MDWE where the kernel has it, as systemd 254+ adds


class NotifySocket:
    """A unix datagram socket standing in for systemd's NOTIFY_SOCKET."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="uptimed-unit-", dir="/tmp"))
        self.path = self.folder / "notify.sock"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.sock.setblocking(False)

    async def until(self, key: str, timeout: float = 60.0) -> dict[str, str]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            data = await asyncio.wait_for(loop.sock_recv(self.sock, 4096), max(0.01, deadline - loop.time()))
            message = dict(line.split("=", 1) for line in data.decode().splitlines())
            if key in message:
                return message

    def close(self) -> None:
        self.sock.close()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
async def notify_socket() -> AsyncIterator[NotifySocket]:
    fake = NotifySocket()
    yield fake
    fake.close()


@pytest.fixture
async def target() -> AsyncIterator[Any]:
    from tests.support import Target

    server = await Target().start()
    yield server
    await server.stop()


@pytest.mark.services
@pytest.mark.kafka
async def test_installed_daemon_runs_under_the_units_sandbox(
    stack: Any, target: Any, notify_socket: NotifySocket, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from tests.support import to_toml
    from tests.test_monitoring import monitor
    from tests.test_packaging import installed_wheel

    installed = installed_wheel(tmp_path_factory)
    spec = tmp_path / "sandbox.json"
    spec.write_text(json.dumps(sandbox_spec(systemd_analyze())))

    # Secrets in the EnvironmentFile, the rest in the TOML file; log format
    # left at auto, which must choose JSON lines on a pipe, as under journald.
    sections = stack.sections()
    dsn, redis_url = sections["database"].pop("dsn"), sections["redis"].pop("url")
    sections["log"] = {"level": "info"}
    config = tmp_path / "uptimed.toml"
    config.write_text(to_toml(sections) + "\n" + monitor(target.url("/a"), name="a"))
    environment_file = {"UPTIMED_DATABASE__DSN": dsn, "UPTIMED_REDIS__URL": redis_url}
    directives = {key: values[-1] for key, values in unit_directives().items()}

    def command(line: str) -> list[str]:
        argv = shlex.split(line.replace(UNIT_UPTIMED, str(installed.uptimed)).replace(UNIT_CONFIG, str(config)))
        return [sys.executable, __file__, str(spec), *argv]

    # What systemd passes (less USER/HOME of the uptimed user); WATCHDOG_USEC
    # is 1 s instead of the unit's 30 s so that pings come quickly.
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
        "NOTIFY_SOCKET": str(notify_socket.path),
        "WATCHDOG_USEC": "1000000",
        **environment_file,
    }
    state = tmp_path / "state"
    state.mkdir()

    check = await asyncio.create_subprocess_exec(
        *command(directives["Service.ExecStartPre"]),
        cwd=state,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    checked = (await asyncio.wait_for(check.communicate(), 120))[0].decode()
    assert check.returncode == 0 and ": OK (1 monitor" in checked, checked

    process = await asyncio.create_subprocess_exec(
        *command(directives["Service.ExecStart"]),
        cwd=state,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        ready = await notify_socket.until("READY", timeout=_seconds(directives["Service.TimeoutStartSec"]))
        assert ready["STATUS"].startswith("1 monitors, regions default")
        await notify_socket.until("WATCHDOG", timeout=5)
        await target.wait_hits(1, path="/a", timeout=20)

        # ExecReload=, run as systemd runs it, with a second monitor in the file.
        config.write_text(config.read_text() + monitor(target.url("/b"), name="b"))
        reload = shlex.split(directives["Service.ExecReload"].replace("$MAINPID", str(process.pid)))
        kill = await asyncio.create_subprocess_exec(*reload)
        assert await asyncio.wait_for(kill.wait(), 10) == 0
        await notify_socket.until("RELOADING", timeout=10)
        await notify_socket.until("READY", timeout=30)
        await target.wait_hits(1, path="/b", timeout=20)

        process.send_signal(signal.SIGTERM)
        await notify_socket.until("STOPPING", timeout=10)
        code = await asyncio.wait_for(process.wait(), _seconds(directives["Service.TimeoutStopSec"]))
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.stdout is not None
    output = (await process.stdout.read()).decode(errors="replace")
    assert code == 0, output[-3000:]
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]  # JSON lines, every one
    assert {"daemon.ready", "config.reloaded", "daemon.stopped"} <= {line.get("event") for line in lines}
    assert not [line for line in lines if line.get("level") in ("error", "critical")], output[-3000:]
    secret = dsn.split("@")[0].rpartition(":")[2]
    assert dsn not in output and redis_url not in output and (not secret or secret not in output)


# ---------------------------------------------------------------- the image


@pytest.fixture(scope="module")
def dockerfile() -> Any:
    from dockerfile_parse import DockerfileParser

    return DockerfileParser(path=str(DOCKERFILE))


def stages(dockerfile: Any) -> list[list[dict[str, Any]]]:
    """The instructions of each stage, FROM first."""
    out: list[list[dict[str, Any]]] = []
    for instruction in dockerfile.structure:
        if instruction["instruction"] == "FROM":
            out.append([])
        if out and instruction["instruction"] != "COMMENT":
            out[-1].append(instruction)
    return out


def last(stage: list[dict[str, Any]], name: str) -> str | None:
    values = [i["value"] for i in stage if i["instruction"] == name]
    return values[-1] if values else None


def exec_form(value: str) -> list[str]:
    form = json.loads(value)
    assert isinstance(form, list), f"{value}: use the exec form (a JSON list), so signals reach uptimed"
    return form


def test_dockerfile_builds_in_two_stages_and_runs_uptimed_unprivileged(dockerfile: Any) -> None:
    builder, final = stages(dockerfile)[0], stages(dockerfile)[-1]
    assert len(stages(dockerfile)) >= 2
    assert re.fullmatch(r"python:3\.1[1-9]-slim(-\w+)?", dockerfile.baseimage), dockerfile.baseimage
    assert any("pip wheel" in i["value"] for i in builder if i["instruction"] == "RUN")
    installs = [i["value"] for i in final if i["instruction"] == "RUN" and "pip install" in i["value"]]
    assert installs and all("--no-index" in run and "from=builder" in run for run in installs)

    user = last(final, "USER")
    assert user and user.split(":")[0] not in ("", "0", "root"), f"USER {user}"
    healthcheck = last(final, "HEALTHCHECK") or ""
    assert "/healthz" in healthcheck and "CMD" in healthcheck
    assert exec_form(last(final, "ENTRYPOINT") or "null") == ["uptimed"]
    assert exec_form(last(final, "CMD") or "null") == ["run", "-c", IMAGE_CONFIG]
    assert dockerfile.envs.get("UPTIMED_CONFIG") == IMAGE_CONFIG


def dockerignored(relative: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern that matches the path or a parent folder decides."""
    parts = relative.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        glob = pattern.removeprefix("!").strip("/")
        regex = "".join(
            "(.*/)?"
            if token == "**/"
            else ".*"
            if token == "**"
            else "[^/]*"
            if token == "*"
            else "[^/]"
            if token == "?"
            else re.escape(token)
            for token in re.findall(r"\*\*/|\*\*|\*|\?|[^*?]+", glob)
        )
        if any(re.fullmatch(regex, candidate) for candidate in candidates):
            ignored = not negate
    return ignored


def test_docker_build_context_builds_the_wheel(dockerfile: Any, tmp_path: Path) -> None:
    """The builder stage's COPY lines, through .dockerignore, give pip what it needs for the wheel."""
    from tests.test_packaging import build_wheel

    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert dockerignored(".data/postgres/data/PG_VERSION", patterns)
    assert dockerignored("uptimed/__pycache__/cli.cpython-311.pyc", patterns)
    workdir = tmp_path / "src"
    workdir.mkdir()
    for instruction in stages(dockerfile)[0]:
        if instruction["instruction"] != "COPY":
            continue
        *sources, dest = shlex.split(instruction["value"])
        assert not any(s.startswith("--") for s in sources), "a COPY --from in the builder stage"
        for source in sources:
            path = ROOT / source
            assert not dockerignored(source, patterns), f"{source} is excluded by .dockerignore"
            files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
            for file in files:
                relative = file.relative_to(ROOT).as_posix()
                if dockerignored(relative, patterns):
                    continue
                inside = file.name if path.is_file() else file.relative_to(path).as_posix()
                target = workdir / dest / inside
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(file, target)

    import zipfile

    with zipfile.ZipFile(build_wheel(workdir, tmp_path / "dist")) as wheel:
        assert "uptimed/schema.sql" in wheel.namelist()
        assert "uptimed/cli.py" in wheel.namelist()


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        code = self.status if self.path == "/healthz" else 404
        self.send_response(code)
        self.end_headers()
        self.wfile.write(b'{"status":"ok"}' if code == 200 else b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[http.server.HTTPServer]:
    server = http.server.HTTPServer(("127.0.0.1", 0), type("Health", (_Health,), {}))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_healthcheck_command_passes_only_on_a_healthy_answer(
    dockerfile: Any, health_server: http.server.HTTPServer
) -> None:
    healthcheck = last(stages(dockerfile)[-1], "HEALTHCHECK") or ""
    argv = exec_form(healthcheck.split("CMD", 1)[1].strip())
    assert argv[0] == "python" and "127.0.0.1:8080/healthz" in " ".join(argv)
    port = health_server.server_address[1]

    def run(url_port: int) -> int:
        # The image's python has only the standard library: -I keeps site-packages out of it.
        local = [sys.executable, "-I", *[a.replace("127.0.0.1:8080", f"127.0.0.1:{url_port}") for a in argv[1:]]]
        return subprocess.run(local, capture_output=True, timeout=30, check=False).returncode

    assert run(port) == 0
    health_server.RequestHandlerClass.status = 503  # type: ignore[attr-defined]
    assert run(port) == 1
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed = unused.getsockname()[1]
    assert run(closed) == 1


def test_image_entry_command_works_from_a_plain_virtualenv(
    dockerfile: Any, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from tests.test_packaging import installed_wheel

    installed = installed_wheel(tmp_path_factory)
    final = stages(dockerfile)[-1]
    entrypoint, cmd = exec_form(last(final, "ENTRYPOINT") or "[]"), exec_form(last(final, "CMD") or "[]")
    config = tmp_path / "uptimed.toml"
    shutil.copyfile(ROOT / "deploy" / "compose.uptimed.toml", config)
    argv = [str(installed.venv / "bin" / entrypoint[0]), *entrypoint[1:], *cmd]
    argv = [str(config) if a == IMAGE_CONFIG else a for a in argv]
    env = {**installed.env(), **{k: v for k, v in dockerfile.envs.items() if k.startswith("UPTIMED_")}}
    env["UPTIMED_CONFIG"] = str(config)

    usage = subprocess.run(
        [*argv, "--help"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert usage.returncode == 0 and "run the daemon" in usage.stdout, usage.stderr
    # The image's default config path (UPTIMED_CONFIG), with the environment compose gives uptimed.
    compose = _compose()
    env.update({k: _interpolate(str(v)) for k, v in compose["services"]["uptimed"]["environment"].items()})
    check = subprocess.run(
        [argv[0], "check-config"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert check.returncode == 0 and check.stdout.startswith(f"{config}: OK (1 monitor"), check.stdout + check.stderr


# ---------------------------------------------------------------- compose


def _compose() -> dict[str, Any]:
    import yaml

    return yaml.safe_load(COMPOSE.read_text())


def _interpolate(value: str) -> str:
    """compose's ``${NAME:-default}`` with nothing set: the default."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)


def test_compose_runs_uptimed_with_postgres_redis_and_kafka_in_kraft_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    from urllib.parse import urlsplit

    from tests.support import services_script
    from uptimed.config import load_settings
    from uptimed.daemon import STOP_GRACE_S

    compose = _compose()
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "kafka", "uptimed"}
    for name in ("postgres", "redis", "kafka"):
        assert services[name]["healthcheck"]["test"], f"{name} has no healthcheck"

    kafka = services["kafka"]
    env = {k: str(v) for k, v in kafka["environment"].items()}
    # The broker scripts/services runs and the tests pass on (scripts/kafka/versions).
    assert kafka["image"] == f"apache/kafka:{services_script().kafka_versions()['KAFKA_VERSION']}"
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    node, _, voter = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].partition("@")
    assert node == env["KAFKA_NODE_ID"] and voter == "kafka:9093"
    assert "CONTROLLER://:9093" in env["KAFKA_LISTENERS"].split(",")
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] == "CONTROLLER"
    assert len(base64.urlsafe_b64decode(env["CLUSTER_ID"] + "==")) == 16  # a UUID, as kafka-storage wants

    uptimed = services["uptimed"]
    assert (COMPOSE.parent / uptimed["build"]["context"] / uptimed["build"]["dockerfile"]).resolve() == DOCKERFILE
    assert uptimed["depends_on"] == {name: {"condition": "service_healthy"} for name in ("postgres", "redis", "kafka")}
    mounts = [volume.split(":") for volume in uptimed["volumes"]]
    ((source, _, mode),) = [m for m in mounts if m[1] == IMAGE_CONFIG]
    assert mode == "ro"
    assert _seconds(uptimed["stop_grace_period"]) > STOP_GRACE_S

    # The mounted config addresses the services by their compose names, as the container sees them.
    for name, value in uptimed["environment"].items():
        monkeypatch.setenv(name, _interpolate(str(value)))
    settings = load_settings(COMPOSE.parent / source)
    assert urlsplit(settings.database.dsn.get_secret_value()).hostname == "postgres"
    assert urlsplit(settings.database.dsn.get_secret_value()).password == "uptimed"
    assert urlsplit(settings.redis.url.get_secret_value()).hostname == "redis"
    assert settings.kafka.bootstrap_servers == [env["KAFKA_ADVERTISED_LISTENERS"].removeprefix("PLAINTEXT://")]
    assert (settings.api.host, settings.api.port) == ("0.0.0.0", 8080)
    assert uptimed["ports"] == [f"127.0.0.1:{settings.api.port}:{settings.api.port}"]


if __name__ == "__main__":
    # tests/test_deploy.py SPEC ARGV...: enter the unit's sandbox, then become ARGV.
    enter_sandbox(json.loads(Path(sys.argv[1]).read_text()))
    os.execv(sys.argv[2], sys.argv[2:])
