"""A user's monitors, integrations, escalation policies and maintenance windows as TOML in the config file's format,
and back.

``uptimed export --user alice`` (and ``GET /api/v1/export``) writes
``[[monitors]]``, ``[[integrations]]``, ``[[escalation_policies]]`` and
``[[maintenance]]`` tables exactly as ``uptimed.toml`` declares them: tags,
routing (an integration's ``monitors = [...]``), each monitor's policy
(``escalation_policy = KEY``) and windows included. Secrets are left out
unless asked for (``--secrets``); a line says which. Every monitor,
integration and policy gets a ``key`` (its config key, else its name, made
unique), which the others use to name it.

``uptimed import FILE`` reads such a file back, validated as a whole (the
config file's models and cross-checks, each integration by its channel, with
``file:line`` messages) before anything is written, then writes all of it in
one transaction, as ordinary objects of the owner (not declared in a file).
The file could as well be pasted into ``uptimed.toml``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

import asyncpg
import structlog

from uptimed.channels.registry import ChannelRegistry, UnknownChannelError
from uptimed.config import ConfigError, ConfigProblem, Declared, parse_declared
from uptimed.escalation_policy import PolicyFields, StepFields
from uptimed.maintenance import MaintenanceFields, MaintenanceIn, MaintenanceWindow
from uptimed.monitor import Monitor, MonitorFields
from uptimed.rules.declared import declared_integrations
from uptimed.rules.integrations import name_of
from uptimed.store import escalation_policies, integrations, maintenance, monitors, users
from uptimed.store.escalation_policies import StoredPolicy
from uptimed.store.integrations import Integration

log = structlog.get_logger()

MAX_OBJECTS = 10_000


# Export


def _key(wanted: str, taken: set[str]) -> str:
    key, n = wanted, 2
    while key in taken:
        key, n = f"{wanted}-{n}", n + 1
    taken.add(key)
    return key


def _monitor_table(owner: str, key: str, monitor: Monitor, policy: str | None) -> dict[str, Any]:
    fields = monitor.model_dump(include=set(MonitorFields.model_fields), exclude_defaults=True, mode="json")
    http = fields.get("http")
    if http and "accepted_statuses" in http:
        http["accepted_statuses"] = [str(s) for s in monitor.http.accepted_statuses]
    table: dict[str, Any] = {"owner": owner, "key": key, "name": monitor.name, "target": monitor.target}
    # A file names the policy by its key (ids are not stable across databases).
    table.update({k: v for k, v in fields.items() if k not in ("name", "target", "escalation_policy_id")})
    if policy is not None:
        table["escalation_policy"] = policy
    return table


def _policy_lines(owner: str, key: str, policy: StoredPolicy, hook_keys: Mapping[int, str]) -> list[str] | None:
    """The ``[[escalation_policies]]`` table of ``policy``; None when no step notifies an integration any more."""
    steps: list[list[str]] = []
    for step in policy.steps:
        named = [hook_keys[i] for i in step.integration_ids if i in hook_keys]
        if not named:
            continue  # its integrations were all deleted: it notifies nobody
        table: dict[str, Any] = {"name": step.name or None, "after": step.after_s, "integrations": named}
        steps.append(["[[escalation_policies.steps]]", *_table(table)])
    if not steps:
        return None
    table = {"owner": owner, "key": key, "name": policy.name, "repeat_every": policy.repeat_every_s}
    lines = ["", "[[escalation_policies]]", *_table(table)]
    if len(steps) < len(policy.steps):
        lines.append(f"# {len(policy.steps) - len(steps)} step(s) left out: they notify no integration any more")
    return lines + [line for step in steps for line in step]


def _window_table(owner: str, key: str, window: MaintenanceWindow, keys: Mapping[int, str]) -> dict[str, Any]:
    fields = window.model_dump(include=set(MaintenanceFields.model_fields), exclude_defaults=True)
    table: dict[str, Any] = {"owner": owner, "key": key, **fields}
    chosen = [keys[i] for i in window.monitor_ids if i in keys]
    if chosen:
        table["monitors"] = chosen
    return table


async def _routing(pool: asyncpg.Pool, owned: Sequence[Monitor], integration: Integration) -> list[int] | None:
    """The monitors ``integration`` notifies about (the one routing rule); None when it is all of them."""
    listed = {
        r["monitor_id"]
        for r in await pool.fetch(
            "SELECT monitor_id FROM monitor_integrations WHERE integration_id = $1", integration.id
        )
    }
    reached = [
        m.id
        for m in owned
        if (not listed or m.id in listed) and (m.notify_integrations is None or integration.id in m.notify_integrations)
    ]
    return None if len(reached) == len(owned) else reached


async def export(pool: asyncpg.Pool, registry: ChannelRegistry, username: str, *, secrets: bool = False) -> str:
    """``username``'s monitors, integrations and maintenance windows as TOML; secrets only with ``secrets``."""
    user = await users.get_by_username(pool, username)
    if user is None:
        raise LookupError(f"no user named {username!r}")
    owned = [o.monitor for o in await monitors.page_overviews(pool, user.id, after_id=None, limit=MAX_OBJECTS)]
    hooks = list(reversed(await integrations.page_for_owner(pool, user.id, before_id=None, limit=MAX_OBJECTS)))
    windows = await maintenance.for_owner(pool, user.id)
    policies = await escalation_policies.list_for_owner(pool, user.id)

    taken: set[str] = set()
    keys = {m.id: _key(m.config_key or m.name, taken) for m in owned}
    taken_hooks: set[str] = set()
    hook_keys = {hook.id: _key(hook.config_key or f"{hook.type}-{hook.id}", taken_hooks) for hook in hooks}
    taken_policies: set[str] = set()
    policy_tables: dict[int, tuple[str, list[str]]] = {}
    for policy in policies:
        key = _key(policy.config_key or policy.name, taken_policies)
        if (lines_of := _policy_lines(user.username, key, policy, hook_keys)) is not None:
            policy_tables[policy.id] = (key, lines_of)
    lines = [
        f"# uptimed export of {user.username}, {datetime.now(UTC).isoformat(timespec='seconds')}",
        "# `uptimed import` reads it back; it could as well go into uptimed.toml.",
        ""
        if secrets
        else "# Secrets are left out (uptimed export --secrets includes them): fill them in before importing.",
    ]
    for monitor in owned:
        policy_id = monitor.escalation_policy_id
        policy_key = policy_tables[policy_id][0] if policy_id in policy_tables else None
        lines += ["", "[[monitors]]", *_table(_monitor_table(user.username, keys[monitor.id], monitor, policy_key))]
        if policy_id is not None and policy_key is None:
            lines.append("# its escalation policy notifies no integration any more: left out")
    for hook in hooks:
        config, left_out = _config(registry, hook, secrets=secrets)
        table: dict[str, Any] = {
            "owner": user.username,
            "key": hook_keys[hook.id],
            "name": name_of(registry, hook),
            "type": hook.type,
        }
        if not hook.enabled:
            table["enabled"] = False
        reached = await _routing(pool, owned, hook)
        if reached is not None:
            table["monitors"] = [keys[i] for i in reached]
        table["config"] = config
        lines += ["", "[[integrations]]", *_table(table)]
        if left_out:
            lines.append(f"# left out, secret: {', '.join(left_out)}")
        if reached == []:
            lines.append("# notifies about none of the monitors: `monitors` cannot say so, mind it after importing")
    for _, policy_lines in policy_tables.values():
        lines += policy_lines
    window_keys: set[str] = set()
    for window in windows:
        key = _key(window.config_key or window.name, window_keys)
        lines += ["", "[[maintenance]]", *_table(_window_table(user.username, key, window, keys))]
    return "\n".join(line for line in lines if line is not None) + "\n"


def _config(registry: ChannelRegistry, hook: Integration, *, secrets: bool) -> tuple[dict[str, Any], list[str]]:
    try:
        fields = registry.config_fields(hook.type)
    except UnknownChannelError:
        return ({}, ["all of it (the channel is not installed)"]) if not secrets else (dict(hook.config), [])
    secret = {f.name for f in fields if f.secret}
    if secrets:
        return {k: v for k, v in hook.config.items() if v is not None}, []
    kept = {k: v for k, v in hook.config.items() if k not in secret and v is not None}
    left_out = sorted(k for k in secret if hook.config.get(k) not in (None, {}, [], ""))
    return kept, left_out


_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _table(values: Mapping[str, Any]) -> list[str]:
    return [f"{_name(k)} = {_value(v)}" for k, v in values.items() if v is not None]


def _name(key: str) -> str:
    return key if _BARE.fullmatch(key) else json.dumps(key, ensure_ascii=False)


def _value(value: Any) -> str:
    """One TOML value; strings as basic strings (JSON's escapes are TOML's), tables inline."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, time):
        return value.strftime("%H:%M:%S")
    if isinstance(value, Mapping):
        inner = ", ".join(f"{_name(str(k))} = {_value(v)}" for k, v in value.items() if v is not None)
        return "{ " + inner + " }" if inner else "{}"
    if isinstance(value, Iterable):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


# Import


@dataclass(frozen=True)
class Imported:
    monitors: int
    integrations: int
    maintenance: int
    escalation_policies: int
    users_created: list[str]


def read(text: str, path: Path, registry: ChannelRegistry, regions: list[str], *, owner: str | None = None) -> Declared:
    """``text`` checked as a whole: the file's models and cross-checks, each integration by its channel.

    ``owner`` imports everything as that user, whatever the file says.
    :class:`~uptimed.config.ConfigError` lists every problem with its line.
    """
    if owner is not None:
        text = re.sub(r'(?m)^(\s*owner\s*=\s*)"[^"\n]*"', lambda m: m.group(1) + json.dumps(owner), text)
    declared = parse_declared(text, path, regions)
    problems: list[ConfigProblem] = []
    try:
        declared_integrations(declared, registry, path, text=text)
    except ConfigError as exc:
        problems += exc.problems
    if problems:
        raise ConfigError(path, problems)
    return declared


async def write(pool: asyncpg.Pool, registry: ChannelRegistry, declared: Declared, path: Path) -> Imported:
    """Write what :func:`read` checked, in one transaction; owners that do not exist yet are created."""
    configs = declared_integrations(declared, registry)
    owners = sorted(
        {s.owner for s in declared.monitors}
        | {s.owner for s in declared.integrations}
        | {s.owner for s in declared.maintenance}
        | {s.owner for s in declared.escalation_policies}
    )
    async with pool.acquire() as conn, conn.transaction():
        created = await conn.fetch(
            """
            INSERT INTO users (username, email)
            SELECT name, name || '@localhost' FROM unnest($1::text[]) AS name
            ON CONFLICT (username) DO NOTHING RETURNING username
            """,
            owners,
        )
        owner_ids: dict[str, int] = {
            r["username"]: r["id"]
            for r in await conn.fetch("SELECT username, id FROM users WHERE username = ANY($1::text[])", owners)
        }
        # Integrations first, then the policies that name them, then the monitors with their policy; routing last.
        hook_ids: dict[tuple[str, str], int] = {}
        for config in configs:
            hook = await integrations.create(
                conn, owner_ids[config.owner], config.type, config.config, name=config.name, enabled=config.enabled
            )
            hook_ids[(config.owner, config.key)] = hook.id
        policy_ids: dict[tuple[str, str], int] = {}
        for policy in declared.escalation_policies:
            steps = [
                StepFields(
                    name=step.name,
                    after=step.after,
                    # A key listed twice is one integration notified once.
                    integrations=list(dict.fromkeys(hook_ids[(policy.owner, key)] for key in step.integrations)),
                )
                for step in policy.steps
            ]
            fields_of = PolicyFields(name=policy.name, steps=steps, repeat_every=policy.repeat_every)
            policy_ids[(policy.owner, policy.key)] = await escalation_policies.insert(
                conn, owner_ids[policy.owner], fields_of
            )
        ids: dict[tuple[str, str], int] = {}
        for spec in declared.monitors:
            fields = MonitorFields.model_validate(
                {
                    **spec.model_dump(include=set(MonitorFields.model_fields)),
                    "escalation_policy_id": policy_ids.get((spec.owner, spec.escalation_policy or "")),
                }
            )
            made = await monitors.create(conn, owner_ids[spec.owner], fields)
            ids[(spec.owner, spec.stable_key)] = made.id
        for config in configs:
            for key in config.monitor_keys or []:
                await conn.execute(
                    "INSERT INTO monitor_integrations (monitor_id, integration_id) VALUES ($1, $2)",
                    ids[(config.owner, key)],
                    hook_ids[(config.owner, config.key)],
                )
        for window in declared.maintenance:
            fields_in = MaintenanceIn.model_validate(
                {
                    **window.model_dump(include=set(MaintenanceFields.model_fields)),
                    "monitor_ids": [ids[(window.owner, key)] for key in window.monitors],
                }
            )
            await maintenance.create(conn, owner_ids[window.owner], fields_in)
    result = Imported(
        len(declared.monitors),
        len(configs),
        len(declared.maintenance),
        len(declared.escalation_policies),
        [r["username"] for r in created],
    )
    log.info(
        "config.imported",
        monitors=result.monitors,
        integrations=result.integrations,
        maintenance=result.maintenance,
        escalation_policies=result.escalation_policies,
        users_created=result.users_created,
    )
    return result
