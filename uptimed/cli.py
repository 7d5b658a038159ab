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
from uptimed.config import ConfigError, Settings, load_settings
from uptimed.errors import ServiceUnavailable

DEFAULT_CONFIG = "/etc/uptimed/uptimed.toml"

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2


def _config_path(args: argparse.Namespace) -> Path:
    return Path(args.config or os.environ.get("UPTIMED_CONFIG") or DEFAULT_CONFIG)


def _load(args: argparse.Namespace) -> Settings:
    return load_settings(_config_path(args))


def cmd_check_config(args: argparse.Namespace) -> int:
    path = _config_path(args)
    settings = load_settings(path)
    monitors = len(settings.monitors)
    print(
        f"{path}: OK ({monitors} monitor{'s' * (monitors != 1)}, "
        f"regions: {', '.join(settings.probe.regions)})"
    )
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
    anyio.run(Daemon(settings, config_path=path).run, backend_options={"use_uvloop": True})
    return EXIT_OK


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
