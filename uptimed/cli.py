"""The ``uptimed`` command: run, check-config, migrate, channels."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable
from pathlib import Path

import anyio

from uptimed import __version__
from uptimed.config import ConfigError, Settings, configured_integrations, load_settings
from uptimed.errors import ServiceUnavailable

DEFAULT_CONFIG = "/etc/uptimed/uptimed.toml"

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2


def _config_path(args: argparse.Namespace) -> Path:
    return Path(args.config or os.environ.get("UPTIMED_CONFIG") or DEFAULT_CONFIG)


def _load(args: argparse.Namespace) -> Settings:
    return load_settings(_config_path(args))


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1)}"


def cmd_check_config(args: argparse.Namespace) -> int:
    from uptimed.channels.registry import default_registry

    path = _config_path(args)
    settings = load_settings(path)
    configured_integrations(settings, default_registry(), path)
    print(
        f"{path}: OK ({_plural(len(settings.monitors), 'monitor')}, "
        f"{_plural(len(settings.integrations), 'integration')}, "
        f"regions: {', '.join(settings.probe.regions)})"
    )
    return EXIT_OK


def cmd_channels(args: argparse.Namespace) -> int:
    from uptimed.channels.registry import default_registry

    registry = default_registry()
    for name in registry.names():
        loaded = registry.channels[name]
        print(f"{name}  ({loaded.distribution or '?'} {loaded.version or ''})".rstrip())
        for field in registry.config_fields(name):
            flags = ", ".join(f for f in ("required" if field.required else "", "secret" if field.secret else "") if f)
            default = "" if field.required else f" = {field.default!r}"
            print(f"    {field.name}: {field.type}{default}{f'  [{flags}]' if flags else ''}")
    for broken in registry.broken:
        where = f"{broken.distribution or '?'} {broken.version or ''}".strip()
        print(f"{broken.name}  ({where})  BROKEN: {broken.reason}")
    return EXIT_OK


def cmd_migrate(args: argparse.Namespace) -> int:
    from uptimed.store.database import connect, migrate

    settings = _load(args)

    async def main() -> int:
        pool = await connect(settings.database)
        try:
            result = await migrate(pool)
        finally:
            await pool.close()
        state = "applied" if result.applied else "already up to date"
        print(f"schema version {result.version}: {state}")
        return EXIT_OK

    return asyncio.run(main())


def cmd_run(args: argparse.Namespace) -> int:
    from uptimed import log
    from uptimed.daemon import Daemon

    path = _config_path(args)
    settings = load_settings(path)
    log.configure(settings.log)
    # uvloop: ~30% more new-connection probes per CPU second (bench/probe_throughput.py --close --uvloop).
    try:
        anyio.run(Daemon(settings, config_path=path).run, backend_options={"use_uvloop": True})
    except BaseExceptionGroup as group:
        # A task group wraps what a part raised: surface the error main() knows how to report.
        for kind in (ConfigError, ServiceUnavailable):
            if (matched := group.subgroup(kind)) is not None:
                raise _first(matched) from group
        raise
    return EXIT_OK


def _first(group: BaseExceptionGroup) -> BaseException:
    leaf: BaseException = group
    while isinstance(leaf, BaseExceptionGroup):
        leaf = leaf.exceptions[0]
    return leaf


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="uptimed", description="Self-hosted uptime monitor.")
    parser.add_argument("--version", action="version", version=f"uptimed {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.add_argument(
            "-c", "--config", metavar="PATH",
            help=f"config file (default: $UPTIMED_CONFIG or {DEFAULT_CONFIG})",
        )
        command.set_defaults(handler=handler)
        return command

    check = add("check-config", cmd_check_config, "validate a config file and summarise it")
    check.add_argument("path", nargs="?", metavar="PATH", help="config file to check")
    add("migrate", cmd_migrate, "apply schema.sql to the configured database")
    add("run", cmd_run, "run the daemon")
    add("channels", cmd_channels, "list notification channels, their config fields, and broken plugins")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "path", None):
        args.config = args.path
    try:
        return args.handler(args)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    except ServiceUnavailable as exc:
        print(f"uptimed: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
