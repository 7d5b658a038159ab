"""Monitors, integrations, maintenance windows and escalation policies declared in the config file, into the database.

``[[monitors]]``, ``[[integrations]]``, ``[[maintenance]]`` and
``[[escalation_policies]]`` are the file's: at start and on every reload they
are written to the database, matched by (owner, key), so their history
survives edits, and a monitor or integration removed from the file is
disabled, not deleted (a window is deleted; a policy once no monitor uses
it). Through the API and the pages they can be read and tested but not
changed (:class:`~uptimed.rules.errors.DeclaredInFile`).

An integration's config is checked here by its channel's model, with the
same messages as the API, each at its key path and line in the file
(``uptimed.toml:12: integrations[0].config.webhookUrl: ...``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import asyncpg
import structlog

from uptimed.channels.registry import ChannelRegistry
from uptimed.config import ConfigError, ConfigProblem, Declared, Settings, key_lines, line_of
from uptimed.rules.errors import Invalid, dotted
from uptimed.rules.integrations import validated
from uptimed.store import escalation_policies, integrations, maintenance, monitors
from uptimed.store.escalation_policies import ConfiguredPolicy
from uptimed.store.integrations import ConfiguredIntegration

log = structlog.get_logger()


def declared_integrations(
    settings: Settings | Declared, registry: ChannelRegistry, path: Path | None = None, *, text: str | None = None
) -> list[ConfiguredIntegration]:
    """Each ``[[integrations]]`` entry with its config validated by its channel and ready to store.

    Raises :class:`~uptimed.config.ConfigError` naming the key path and line
    of every bad value (``integrations[0].config.webhookUrl``), read from
    ``text`` or else the file at ``path``.
    """
    if text is None and path is not None and path.exists():
        text = path.read_text(encoding="utf-8")
    lines = key_lines(text) if text else {}
    problems: list[ConfigProblem] = []
    out: list[ConfiguredIntegration] = []
    for index, spec in enumerate(settings.integrations):
        try:
            config = validated(registry, spec.type, spec.config)
        except Invalid as exc:
            for problem in exc.problems:
                loc = ("integrations", index, *problem.loc)
                problems.append(ConfigProblem(dotted(loc), problem.msg, line_of(loc, lines)))
            continue
        out.append(
            ConfiguredIntegration(spec.owner, spec.key, spec.type, spec.name, config, spec.enabled, spec.monitors)
        )
    if problems:
        raise ConfigError(path or Path("<config>"), problems)
    return out


def declared_policies(settings: Settings) -> list[ConfiguredPolicy]:
    """Each ``[[escalation_policies]]`` entry with the config monitors that name it."""
    return [
        ConfiguredPolicy(
            owner=spec.owner,
            key=spec.key,
            name=spec.name,
            repeat_every_s=spec.repeat_every,
            steps=[(step.name, step.after, step.integrations) for step in spec.steps],
            monitor_keys=[
                m.stable_key for m in settings.monitors if m.owner == spec.owner and m.escalation_policy == spec.key
            ],
        )
        for spec in settings.escalation_policies
    ]


@dataclass(frozen=True)
class Synced:
    """What a sync changed."""

    created: int
    updated: int
    disabled: int
    users_created: list[str]
    integrations: int
    """How many integrations the file declares."""
    maintenance: int = 0
    """How many maintenance windows the file declares."""
    policies: int = 0
    """How many escalation policies the file declares."""


async def sync(pool: asyncpg.Pool, settings: Settings, registry: ChannelRegistry, path: Path | None = None) -> Synced:
    """Make the database's declared monitors and integrations match ``settings`` (read from ``path``).

    Validates every integration first: a file with a bad one changes nothing
    (:class:`~uptimed.config.ConfigError`).
    """
    declared = declared_integrations(settings, registry, path)
    result = await monitors.sync_from_config(pool, settings.monitors)
    async with pool.acquire() as conn, conn.transaction():
        count = await integrations.sync_from_config(conn, declared)
        windows = await maintenance.sync_from_config(conn, settings.maintenance)
        policies = await escalation_policies.sync_from_config(conn, declared_policies(settings))
    log.info(
        "config.synced",
        created=result.created,
        updated=result.updated,
        disabled=result.disabled,
        users_created=result.users_created,
        integrations=count,
        maintenance=windows,
        escalation_policies=policies,
    )
    return Synced(
        result.created,
        result.updated,
        result.disabled,
        result.users_created,
        count,
        maintenance=windows,
        policies=policies,
    )
