"""SQL for ``integrations`` and ``monitor_integrations``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from uptimed.store import Connection, PoolOrConnection
from uptimed.store.owned import OwnedTable

_COLUMNS = "id, owner_id, type, name, config, enabled, config_key, created_at, updated_at"


@dataclass(frozen=True)
class Integration:
    """A stored integration. ``config`` is the stored JSON (secrets in clear): validate it before use."""

    id: int
    owner_id: int
    type: str
    name: str | None
    """What the pages and the log call it; None: its type and destination (``rules.integrations.name_of``)."""
    config: dict[str, Any]
    enabled: bool
    config_key: str | None
    """Its key in the config file when declared there (``[[integrations]]``)."""
    created_at: datetime
    updated_at: datetime

    @property
    def declared_in_file(self) -> bool:
        """Declared in the config file: only the file changes it."""
        return self.config_key is not None


def _from_row(row: asyncpg.Record) -> Integration:
    return Integration(**dict(row))


async def for_event(conn: PoolOrConnection, owner_id: int, monitor_id: int) -> list[Integration]:
    """The owner's enabled integrations to notify about this monitor: the one routing rule.

    Both sides may narrow it, and both must agree: an integration with rows
    in ``monitor_integrations`` (the config file's ``monitors = [...]``)
    notifies only about those monitors; a monitor with ``notify_integrations``
    (the API's and the form's choice) notifies only those integrations.
    Without either, every enabled integration of the owner.
    """
    rows = await conn.fetch(
        f"""
        SELECT {", ".join("i." + c.strip() for c in _COLUMNS.split(","))}
        FROM integrations i LEFT JOIN monitors m ON m.id = $2
        WHERE i.owner_id = $1 AND i.enabled
          AND (NOT EXISTS (SELECT 1 FROM monitor_integrations WHERE integration_id = i.id)
               OR EXISTS (SELECT 1 FROM monitor_integrations WHERE monitor_id = $2 AND integration_id = i.id))
          AND (m.notify_integrations IS NULL OR i.id = ANY(m.notify_integrations))
        ORDER BY i.id
        """,
        owner_id,
        monitor_id,
    )
    return [_from_row(row) for row in rows]


async def chosen(conn: PoolOrConnection, owner_id: int, integration_ids: Sequence[int]) -> list[Integration]:
    """Those of ``integration_ids`` that are the owner's and enabled (an escalation step's, say), in id order."""
    rows = await conn.fetch(
        f"""
        SELECT {_COLUMNS} FROM integrations
        WHERE owner_id = $1 AND enabled AND id = ANY($2::bigint[])
        ORDER BY id
        """,
        owner_id,
        list(integration_ids),
    )
    return [_from_row(row) for row in rows]


async def owned_ids(conn: PoolOrConnection, owner_id: int, integration_ids: Sequence[int]) -> set[int]:
    """Those of ``integration_ids`` that are the owner's, enabled or not."""
    rows = await conn.fetch(
        "SELECT id FROM integrations WHERE owner_id = $1 AND id = ANY($2::bigint[])", owner_id, list(integration_ids)
    )
    return {row["id"] for row in rows}


async def get(conn: PoolOrConnection, integration_id: int) -> Integration | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM integrations WHERE id = $1", integration_id)
    return _from_row(row) if row else None


async def create(
    conn: PoolOrConnection,
    owner_id: int,
    type_: str,
    config: dict[str, Any],
    *,
    name: str | None = None,
    enabled: bool = True,
) -> Integration:
    """Store an integration; ``config`` must already be validated by its channel (see the registry)."""
    row = await conn.fetchrow(
        f"""
        INSERT INTO integrations (owner_id, type, name, config, enabled) VALUES ($1, $2, $3, $4, $5)
        RETURNING {_COLUMNS}
        """,
        owner_id,
        type_,
        name,
        config,
        enabled,
    )
    assert row is not None, "INSERT ... RETURNING gives back its row"
    return _from_row(row)


@dataclass(frozen=True)
class ConfiguredIntegration:
    """An ``[[integrations]]`` entry with its config already validated and made storable."""

    owner: str
    key: str
    type: str
    name: str | None
    config: dict[str, Any]
    enabled: bool
    monitor_keys: Sequence[str] | None


async def sync_from_config(conn: Connection, specs: Sequence[ConfiguredIntegration]) -> int:
    """Make the config-declared integrations match the file (inside the caller's transaction).

    Matched by (owner, key); one removed from the file is disabled. Owners and
    monitors must exist already (sync monitors first). Returns how many are declared.
    """
    kept: list[int] = []
    for spec in specs:
        integration_id = await conn.fetchval(
            """
            INSERT INTO integrations (owner_id, config_key, type, config, enabled, name)
            SELECT id, $2, $3, $4, $5, $6 FROM users WHERE username = $1
            ON CONFLICT (owner_id, config_key) DO UPDATE SET
                type = EXCLUDED.type, config = EXCLUDED.config, enabled = EXCLUDED.enabled, name = EXCLUDED.name,
                updated_at = now()
            RETURNING id
            """,
            spec.owner,
            spec.key,
            spec.type,
            spec.config,
            spec.enabled,
            spec.name,
        )
        kept.append(integration_id)
        await conn.execute("DELETE FROM monitor_integrations WHERE integration_id = $1", integration_id)
        if spec.monitor_keys is not None:
            await conn.execute(
                """
                INSERT INTO monitor_integrations (monitor_id, integration_id)
                SELECT m.id, $2 FROM monitors m JOIN users u ON u.id = m.owner_id
                WHERE u.username = $1 AND m.config_key = ANY($3::text[])
                """,
                spec.owner,
                integration_id,
                list(spec.monitor_keys),
            )
    await conn.execute(
        """
        UPDATE integrations SET enabled = false, updated_at = now()
        WHERE config_key IS NOT NULL AND enabled AND NOT (id = ANY($1::bigint[]))
        """,
        kept,
    )
    return len(kept)


# Reads and changes through the API: every one scoped to the owner, so another
# user's integration is indistinguishable from one that does not exist.


async def page_for_owner(
    conn: PoolOrConnection, owner_id: int, *, before_id: int | None, limit: int
) -> list[Integration]:
    """The owner's integrations, newest first, older than ``before_id`` when given."""
    rows = await conn.fetch(
        f"""
        SELECT {_COLUMNS} FROM integrations
        WHERE owner_id = $1 AND ($2::bigint IS NULL OR id < $2)
        ORDER BY id DESC LIMIT $3
        """,
        owner_id,
        before_id,
        limit,
    )
    return [_from_row(row) for row in rows]


async def get_owned(conn: PoolOrConnection, owner_id: int, integration_id: int) -> Integration | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM integrations WHERE id = $1 AND owner_id = $2", integration_id, owner_id
    )
    return _from_row(row) if row else None


async def update_config(
    conn: PoolOrConnection,
    owner_id: int,
    integration_id: int,
    config: dict[str, Any],
    *,
    name: str | None = None,
) -> Integration | None:
    """Replace the config (and the name, when given) of one of the owner's API-created integrations; None if none."""
    row = await conn.fetchrow(
        f"""
        UPDATE integrations SET config = $3, name = coalesce($4, name), updated_at = now()
        WHERE id = $1 AND owner_id = $2 AND config_key IS NULL
        RETURNING {_COLUMNS}
        """,
        integration_id,
        owner_id,
        config,
        name,
    )
    return _from_row(row) if row else None


@dataclass(frozen=True)
class LastDeliveries:
    """How an integration's recent deliveries went, for its card."""

    last_status: str | None
    """The newest delivery's status (SENT, FAILED, RETRYING, PENDING); None before any."""
    last_at: datetime | None
    last_error: str | None
    recent: int
    """How many of the newest deliveries are counted (at most the window asked for)."""
    failed: int
    """How many of those failed."""


async def recent_deliveries(
    conn: PoolOrConnection, owner_id: int, *, window: int = 5, only: int | None = None
) -> dict[int, LastDeliveries]:
    """Per integration of the owner with any delivery: the newest one, and the failures among the ``window`` newest.

    ``only``: just that integration.
    """
    rows = await conn.fetch(
        """
        SELECT i.id, r.*
        FROM integrations i
        CROSS JOIN LATERAL (
            SELECT (array_agg(n.status ORDER BY n.id DESC))[1] AS last_status,
                   (array_agg(n.updated_at ORDER BY n.id DESC))[1] AS last_at,
                   (array_agg(n.error_message ORDER BY n.id DESC))[1] AS last_error,
                   count(*) AS recent,
                   count(*) FILTER (WHERE n.status = 'FAILED') AS failed
            FROM (SELECT id, status, updated_at, error_message FROM notification_log
                  WHERE integration_id = i.id ORDER BY id DESC LIMIT $2) n
        ) r
        WHERE i.owner_id = $1 AND r.recent > 0 AND ($3::bigint IS NULL OR i.id = $3)
        """,
        owner_id,
        window,
        only,
    )
    return {
        row["id"]: LastDeliveries(
            last_status=row["last_status"],
            last_at=row["last_at"],
            last_error=row["last_error"],
            recent=row["recent"],
            failed=row["failed"],
        )
        for row in rows
    }


_owned = OwnedTable("integrations", _COLUMNS, _from_row)

toggle = _owned.toggle
"""Flip ``enabled`` of one of the owner's API-created integrations; the integration after, None if there is none."""

delete_owned = _owned.delete
"""Delete one of the owner's API-created integrations (its log rows go with it)."""

count_made = _owned.count_made
"""How many integrations the owner made through the API or the pages."""

lock_owner = _owned.lock_owner
"""The owner's lock on adding integrations, until the transaction ends."""
