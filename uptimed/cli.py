"""The ``uptimed`` command: run, check-config [--connect], migrate, channels, kinds, user (create, passwd), token."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from uptimed import __version__
from uptimed.config import ConfigError, Settings, load_settings
from uptimed.errors import UptimedError
from uptimed.roles import ROLES

if TYPE_CHECKING:  # asyncpg is imported by the commands that use it, not by every start of the CLI
    import asyncpg

    from uptimed.channels.schema import ConfigField

DEFAULT_CONFIG = "/etc/uptimed/uptimed.toml"

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2


def _config_path(args: argparse.Namespace) -> Path:
    return Path(args.config or os.environ.get("UPTIMED_CONFIG") or DEFAULT_CONFIG)


def _load(args: argparse.Namespace) -> Settings:
    return load_settings(_config_path(args))


def _plural(count: int, noun: str, nouns: str | None = None) -> str:
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


def cmd_check_config(args: argparse.Namespace) -> int:
    from uptimed.channels.registry import default_registry
    from uptimed.rules.declared import declared_integrations

    path = _config_path(args)
    settings = load_settings(path)
    declared_integrations(settings, default_registry(), path)
    policies = len(settings.escalation_policies)
    print(
        f"{path}: OK ({_plural(len(settings.monitors), 'monitor')}, "
        f"{_plural(len(settings.integrations), 'integration')}, "
        + (f"{policies} escalation polic{'ies' if policies != 1 else 'y'}, " if policies else "")
        + f"regions: {', '.join(settings.probe.regions)})"
    )
    if args.connect:
        return asyncio.run(_check_services(settings))
    return EXIT_OK


async def _check_services(settings: Settings) -> int:
    """``check-config --connect``: reach PostgreSQL, Redis and Kafka as ``run`` would, one line each."""
    from uptimed.bus.kafka import SUPPORTED_BROKERS, BrokerRelease, broker_releases
    from uptimed.daemon import connect_redis
    from uptimed.store.database import connect

    pool = await connect(settings.database)
    try:
        server = await pool.fetchval("SHOW server_version")
    finally:
        await pool.close()
    print(f"postgresql: OK (PostgreSQL {server})")
    redis = await connect_redis(settings.redis)
    try:
        info = await redis.info("server")
    finally:
        await redis.aclose()
    print(f"redis: OK (Redis {info.get('redis_version', '?')})")
    releases = await broker_releases(settings.kafka)
    oldest = min(releases.values(), key=BrokerRelease.sort_key)
    print(f"kafka: OK ({_plural(len(releases), 'broker')}, Kafka {oldest})")
    if not oldest.supported:
        print(
            f"uptimed: warning: kafka: a broker runs Kafka {oldest}; uptimed supports {SUPPORTED_BROKERS}",
            file=sys.stderr,
        )
    return EXIT_OK


def cmd_channels(args: argparse.Namespace) -> int:
    from uptimed.channels.registry import default_registry

    registry = default_registry()
    for name in registry.names():
        loaded = registry.channels[name]
        print(f"{name}  ({loaded.distribution or '?'} {loaded.version or ''})".rstrip())
        _print_fields(registry.config_fields(name))
    for broken in registry.broken:
        where = f"{broken.distribution or '?'} {broken.version or ''}".strip()
        print(f"{broken.name}  ({where})  BROKEN: {broken.reason}")
    return EXIT_OK


def cmd_kinds(args: argparse.Namespace) -> int:
    from uptimed.probe.kinds import default_kinds

    kinds = default_kinds()
    for name in kinds.names():
        loaded = kinds.kinds[name]
        pushed = "" if loaded.scheduled else "  [pushed: /ping/<token>]"
        print(f"{name}  {kinds.title(name)}  ({loaded.distribution or '?'} {loaded.version or ''})".rstrip() + pushed)
        if (target := kinds.target_help(name)) is not None:
            print(f"    target: {target}")
        _print_fields(kinds.config_fields(name))
    for broken in kinds.broken:
        where = f"{broken.distribution or '?'} {broken.version or ''}".strip()
        print(f"{broken.name}  ({where})  BROKEN: {broken.reason}")
    return EXIT_OK


def _print_fields(fields: list[ConfigField]) -> None:
    """A channel's config keys or a kind's options, one a line: ``name: type = default  [required, secret]``."""
    for field in fields:
        flags = ", ".join(f for f in ("required" if field.required else "", "secret" if field.secret else "") if f)
        default = "" if field.required else f" = {field.default!r}"
        print(f"    {field.name}: {field.type}{default}{f'  [{flags}]' if flags else ''}")


def cmd_migrate(args: argparse.Namespace) -> int:
    from uptimed.store.database import connect, migrate

    settings = _load(args)

    async def main() -> int:
        pool = await connect(settings.database)
        try:
            result = await migrate(pool)
        finally:
            await pool.close()
        for name in result.applied:
            print(f"applied {name}")
        if result.applied:
            print(f"schema version {result.version}: applied {_plural(len(result.applied), 'step')}")
        else:
            print(f"schema version {result.version}: already up to date")
        return EXIT_OK

    return asyncio.run(main())


def cmd_run(args: argparse.Namespace) -> int:
    from uptimed import daemon, log

    path = _config_path(args)
    settings = load_settings(path)
    log.configure(settings.log)
    # uvloop: ~30% more new-connection probes per CPU second (bench/probe_throughput.py --close --uvloop).
    try:
        run = partial(daemon.run, settings, config_path=path, roles=args.parts)
        anyio.run(run, backend_options={"use_uvloop": True})
    except BaseExceptionGroup as group:
        # A task group wraps what a part raised: surface the error main() knows how to report.
        for kind in (ConfigError, UptimedError):
            if (matched := group.subgroup(kind)) is not None:
                raise _first(matched) from group
        raise
    return EXIT_OK


def _roles(text: str) -> frozenset[str]:
    roles = frozenset(part.strip() for part in text.split(",") if part.strip())
    unknown = sorted(roles - set(ROLES))
    if unknown or not roles:
        raise argparse.ArgumentTypeError(
            f"unknown role {unknown[0]!r}; choose from {', '.join(ROLES)}" if unknown else "empty"
        )
    return roles


def _first(group: BaseExceptionGroup) -> BaseException:
    leaf: BaseException = group
    while isinstance(leaf, BaseExceptionGroup):
        leaf = leaf.exceptions[0]
    return leaf


def _with_database(args: argparse.Namespace, work: Callable[[asyncpg.Pool], Awaitable[int]]) -> int:
    """Run ``work(pool)`` against the configured database (migrated first)."""
    from uptimed.store.database import connect, migrate

    settings = _load(args)

    async def main() -> int:
        pool = await connect(settings.database)
        try:
            await migrate(pool)
            return await work(pool)
        finally:
            await pool.close()

    return asyncio.run(main())


def cmd_user_create(args: argparse.Namespace) -> int:
    from uptimed.store import api_tokens, users

    async def work(pool: asyncpg.Pool) -> int:
        try:
            user = await users.create(pool, args.name, args.email, is_admin=args.admin)
        except users.UserExists:
            print(f"uptimed: a user named {args.name!r} or with that email already exists", file=sys.stderr)
            return EXIT_FAILURE
        except users.InvalidUser as exc:
            print(f"uptimed: {exc}", file=sys.stderr)
            return EXIT_FAILURE
        secret, _ = await api_tokens.create(pool, user.id, "created with the user")
        print(f"user {user.username} created (id {user.id}{', admin' if user.is_admin else ''})")
        print(f"API token (shown once, store it now): {secret}")
        return EXIT_OK

    return _with_database(args, work)


def _read_password(args: argparse.Namespace) -> str | None:
    """The new password from stdin (``--password-stdin``) or typed twice at a prompt; None when they differ."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    import getpass

    first = getpass.getpass(f"new password for {args.name}: ")
    if getpass.getpass("again: ") != first:
        print("uptimed: the two passwords differ; nothing changed", file=sys.stderr)
        return None
    return first


def cmd_user_passwd(args: argparse.Namespace) -> int:
    from uptimed import passwords
    from uptimed.store import users, web_sessions

    password = _read_password(args)
    if password is None:
        return EXIT_FAILURE
    try:
        password_hash = passwords.hash_password(password, username=args.name)
    except passwords.WeakPassword as exc:
        print(f"uptimed: {exc}; nothing changed", file=sys.stderr)
        return EXIT_FAILURE

    async def work(pool: asyncpg.Pool) -> int:
        user = await users.get_by_username(pool, args.name)
        if user is None:
            print(f"uptimed: no user named {args.name!r}", file=sys.stderr)
            return EXIT_FAILURE
        async with pool.acquire() as conn, conn.transaction():
            await users.set_password_hash(conn, user.id, password_hash)
            ended = await web_sessions.delete_for_user(conn, user.id)
        print(f"password of {user.username} set; {_plural(ended, 'web session')} signed out")
        return EXIT_OK

    return _with_database(args, work)


def cmd_token_create(args: argparse.Namespace) -> int:
    from uptimed.store import api_tokens, users

    async def work(pool: asyncpg.Pool) -> int:
        user = await users.get_by_username(pool, args.user)
        if user is None:
            print(f"uptimed: no user named {args.user!r}", file=sys.stderr)
            return EXIT_FAILURE
        secret, token = await api_tokens.create(pool, user.id, args.name)
        print(f"token {token.id} ({token.prefix}…) for {user.username} (shown once, store it now):")
        print(secret)
        return EXIT_OK

    return _with_database(args, work)


def cmd_token_list(args: argparse.Namespace) -> int:
    from uptimed.store import api_tokens

    async def work(pool: asyncpg.Pool) -> int:
        rows = [(u, t) for u, t in await api_tokens.list_all(pool) if args.user in (None, u)]
        if not rows:
            print("no tokens")
        for username, token in rows:
            state = f"revoked {token.revoked_at:%Y-%m-%d}" if token.revoked_at else "active"
            used = f"last used {token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never used"
            print(f"{token.id}  {token.prefix}…  {username}  {token.name or '-'}  {state}, {used}")
        return EXIT_OK

    return _with_database(args, work)


def cmd_token_revoke(args: argparse.Namespace) -> int:
    from uptimed.store import api_tokens

    async def work(pool: asyncpg.Pool) -> int:
        token = await api_tokens.revoke(pool, args.id)
        if token is None:
            print(f"uptimed: no active token with id {args.id}", file=sys.stderr)
            return EXIT_FAILURE
        print(f"token {token.id} ({token.prefix}…) revoked")
        return EXIT_OK

    return _with_database(args, work)


def cmd_integrations(args: argparse.Namespace) -> int:
    from uptimed.channels.registry import default_registry
    from uptimed.rules.integrations import name_of
    from uptimed.store import integrations, users

    registry = default_registry()

    async def work(pool: asyncpg.Pool) -> int:
        user = await users.get_by_username(pool, args.user)
        if user is None:
            print(f"uptimed: no user named {args.user!r}", file=sys.stderr)
            return EXIT_FAILURE
        # The cards' figures: the newest delivery and the failures among the last few.
        found = await integrations.page_for_owner(pool, user.id, before_id=None, limit=10_000)
        deliveries = await integrations.recent_deliveries(pool, user.id)
        if not found:
            print(f"{user.username} has no integrations")
        for item in reversed(found):
            state = "active" if item.enabled else "disabled"
            where = "  [config file]" if item.declared_in_file else ""
            done = deliveries.get(item.id)
            if done is None:
                last = "no deliveries yet"
            else:
                when = f" {done.last_at:%Y-%m-%d %H:%M} UTC" if done.last_at else ""
                last = f"last delivery {done.last_status}{when}"
                if done.failed:
                    last += f"; {done.failed} of the last {done.recent} failed"
            print(f"{item.id}  {name_of(registry, item)}  ({item.type}, {state}{where})  {last}")
        return EXIT_OK

    return _with_database(args, work)


def cmd_export(args: argparse.Namespace) -> int:
    from uptimed.channels.registry import default_registry
    from uptimed.rules import exports

    written: list[str] = []

    async def work(pool: asyncpg.Pool) -> int:
        try:
            written.append(await exports.export(pool, default_registry(), args.user, secrets=args.secrets))
        except LookupError as exc:
            print(f"uptimed: {exc.args[0]}", file=sys.stderr)
            return EXIT_FAILURE
        return EXIT_OK

    status = _with_database(args, work)
    if status != EXIT_OK:
        return status
    if args.output and args.output != "-":
        # Created readable by its owner only: with --secrets it holds them.
        descriptor = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write(written[0])
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(written[0])
    return EXIT_OK


def cmd_import(args: argparse.Namespace) -> int:
    from uptimed.channels.registry import default_registry
    from uptimed.rules import exports

    settings = _load(args)
    path = Path(args.file)
    try:
        text = sys.stdin.read() if args.file == "-" else path.read_text(encoding="utf-8")
    except OSError as exc:
        print(f"uptimed: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILURE
    registry = default_registry()
    # Checked as a whole first: a file with one bad value writes nothing.
    declared = exports.read(text, path, registry, settings.probe.all_regions, owner=args.user)

    async def work(pool: asyncpg.Pool) -> int:
        done = await exports.write(pool, registry, declared, path)
        made = f", users created: {', '.join(done.users_created)}" if done.users_created else ""
        print(
            f"imported {_plural(done.monitors, 'monitor')}, {_plural(done.integrations, 'integration')}, "
            f"{_plural(done.maintenance, 'maintenance window')}, "
            f"{_plural(done.escalation_policies, 'escalation policy', 'escalation policies')}{made}"
        )
        return EXIT_OK

    return _with_database(args, work)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="uptimed", description="Self-hosted uptime monitor.")
    parser.add_argument("--version", action="version", version=f"uptimed {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.add_argument(
            "-c",
            "--config",
            metavar="PATH",
            help=f"config file (default: $UPTIMED_CONFIG or {DEFAULT_CONFIG})",
        )
        command.set_defaults(handler=handler)
        return command

    check = add("check-config", cmd_check_config, "validate a config file and summarise it")
    check.add_argument("path", nargs="?", metavar="PATH", help="config file to check")
    check.add_argument(
        "--connect",
        action="store_true",
        help="also connect to PostgreSQL, Redis and Kafka and report their versions (exit 1 when one is out of reach)",
    )
    add("migrate", cmd_migrate, "apply the schema steps (migrations/) the configured database lacks")
    run = add("run", cmd_run, "run the daemon")
    run.add_argument(
        "--parts",
        type=_roles,
        default=frozenset(ROLES),
        metavar="ROLE[,ROLE...]",
        help=f"run only these roles ({', '.join(ROLES)}; default: all), to give each its own processes or cores",
    )
    add("channels", cmd_channels, "list notification channels, their config fields, and broken plugins")
    add("kinds", cmd_kinds, "list monitor kinds, their options, and broken plugins")
    listed = add(
        "integrations", cmd_integrations, "list a user's integrations by name, with how their last deliveries went"
    )
    listed.add_argument("user", metavar="USER", help="username")
    export = add(
        "export",
        cmd_export,
        "write a user's monitors, integrations, escalation policies and maintenance windows as TOML (the config format)",
    )
    export.add_argument("--user", required=True, metavar="USER", help="username")
    export.add_argument("--secrets", action="store_true", help="include secrets (webhook URLs, tokens, passwords)")
    export.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    importing = add("import", cmd_import, "read an export back: checked as a whole, then written in one transaction")
    importing.add_argument("file", metavar="FILE", help="the export to read ('-': standard input)")
    importing.add_argument("--user", metavar="USER", help="import everything as this user, whatever the file says")

    def action(
        group: argparse._SubParsersAction[argparse.ArgumentParser],
        name: str,
        handler: Callable[[argparse.Namespace], int],
        help_text: str,
    ) -> argparse.ArgumentParser:
        command = group.add_parser(name, help=help_text, description=help_text)
        command.add_argument(
            "-c",
            "--config",
            metavar="PATH",
            default=argparse.SUPPRESS,
            help=f"config file (default: $UPTIMED_CONFIG or {DEFAULT_CONFIG})",
        )
        command.set_defaults(handler=handler)
        return command

    user = add("user", cmd_user_create, "manage users").add_subparsers(dest="action", required=True, metavar="ACTION")
    create_user = action(user, "create", cmd_user_create, "create a user and print their first API token")
    create_user.add_argument("name", metavar="NAME", help="username: letters, digits, '.', '_' or '-'")
    create_user.add_argument("--email", required=True, metavar="ADDR")
    create_user.add_argument("--admin", action="store_true", help="may list every user through the API")
    passwd = action(
        user, "passwd", cmd_user_passwd, "set a user's password for the web pages (signs them out everywhere)"
    )
    passwd.add_argument("name", metavar="NAME", help="username")
    passwd.add_argument(
        "--password-stdin", action="store_true", help="read the password from the first line of standard input"
    )
    token = add("token", cmd_token_list, "manage API tokens").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    create_token = action(token, "create", cmd_token_create, "create an API token for a user and print it once")
    create_token.add_argument("user", metavar="USER", help="username")
    create_token.add_argument("--name", default="", help="what the token is for")
    list_tokens = action(token, "list", cmd_token_list, "list API tokens (prefixes only)")
    list_tokens.add_argument("--user", metavar="USER", help="only this user's")
    revoke_token = action(token, "revoke", cmd_token_revoke, "revoke an API token by id")
    revoke_token.add_argument("id", type=int, metavar="ID")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "path", None):
        args.config = args.path
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    except UptimedError as exc:  # a service is unavailable, or the database is newer than this uptimed
        print(f"uptimed: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
