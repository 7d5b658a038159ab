"""SQL for ``escalation_policies``, their ``escalation_steps`` and the integrations each step notifies."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from uptimed.escalation_policy import PolicyFields
from uptimed.store import Connection, PoolOrConnection


@dataclass(frozen=True)
class StoredStep:
    position: int
    name: str
    after_s: float
    integration_ids: tuple[int, ...]
    """Those of the step's integrations that still exist, in id order."""


@dataclass(frozen=True)
class StoredPolicy:
    id: int
    owner_id: int
    config_key: str | None
    """Its key in the config file when declared there (``[[escalation_policies]]``)."""
    name: str
    repeat_every_s: float | None
    steps: tuple[StoredStep, ...]
    monitor_ids: tuple[int, ...]
    """The monitors that use it."""
    created_at: datetime
    updated_at: datetime

    @property
    def declared_in_file(self) -> bool:
        """Declared in the config file: only the file changes it."""
        return self.config_key is not None


# One row per policy, its steps and its monitors aggregated: steps as a jsonb array in position order.
_SELECT = """
    SELECT p.id, p.owner_id, p.config_key, p.name, p.repeat_every_s, p.created_at, p.updated_at,
           coalesce((
               SELECT jsonb_agg(jsonb_build_object(
                          'position', s.position, 'name', s.name, 'after_s', s.after_s,
                          'integration_ids', coalesce((
                              SELECT jsonb_agg(t.integration_id ORDER BY t.integration_id)
                              FROM escalation_step_integrations t
                              WHERE t.policy_id = s.policy_id AND t.position = s.position), '[]'))
                      ORDER BY s.position)
               FROM escalation_steps s WHERE s.policy_id = p.id), '[]') AS steps,
           coalesce((SELECT array_agg(m.id ORDER BY m.id) FROM monitors m WHERE m.escalation_policy_id = p.id),
                    '{}') AS monitor_ids
    FROM escalation_policies p
"""


def _from_row(row: asyncpg.Record) -> StoredPolicy:
    steps = tuple(
        StoredStep(
            position=int(s["position"]),
            name=str(s["name"]),
            after_s=float(s["after_s"]),
            integration_ids=tuple(int(i) for i in s["integration_ids"]),
        )
        for s in row["steps"]
    )
    return StoredPolicy(
        id=row["id"],
        owner_id=row["owner_id"],
        config_key=row["config_key"],
        name=row["name"],
        repeat_every_s=row["repeat_every_s"],
        steps=steps,
        monitor_ids=tuple(row["monitor_ids"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def get_many(conn: PoolOrConnection, ids: Iterable[int]) -> dict[int, StoredPolicy]:
    rows = await conn.fetch(f"{_SELECT} WHERE p.id = ANY($1::bigint[])", list(ids))
    return {row["id"]: _from_row(row) for row in rows}


async def list_for_owner(conn: PoolOrConnection, owner_id: int) -> list[StoredPolicy]:
    """The owner's policies in creation order (a user has a handful: no paging)."""
    rows = await conn.fetch(f"{_SELECT} WHERE p.owner_id = $1 ORDER BY p.id", owner_id)
    return [_from_row(row) for row in rows]


async def get_owned(conn: PoolOrConnection, owner_id: int, policy_id: int) -> StoredPolicy | None:
    row = await conn.fetchrow(f"{_SELECT} WHERE p.id = $1 AND p.owner_id = $2", policy_id, owner_id)
    return _from_row(row) if row else None


async def _write_steps(conn: Connection, policy_id: int, steps: Sequence[tuple[str, float, Sequence[int]]]) -> None:
    """Replace the policy's steps: ``(name, after_s, integration ids)`` in order."""
    await conn.execute("DELETE FROM escalation_steps WHERE policy_id = $1", policy_id)
    await conn.execute(
        """
        INSERT INTO escalation_steps (policy_id, position, name, after_s)
        SELECT $1, n, name, after_s FROM unnest($2::text[], $3::float8[]) WITH ORDINALITY AS s(name, after_s, n)
        """,
        policy_id,
        [name for name, _, _ in steps],
        [after for _, after, _ in steps],
    )
    await conn.execute(
        """
        INSERT INTO escalation_step_integrations (policy_id, position, integration_id)
        SELECT $1, position, integration_id FROM unnest($2::int[], $3::bigint[]) AS t(position, integration_id)
        ON CONFLICT DO NOTHING
        """,
        policy_id,
        [n for n, (_, _, ids) in enumerate(steps, start=1) for _ in ids],
        [i for _, _, ids in steps for i in ids],
    )


def _steps(fields: PolicyFields) -> list[tuple[str, float, Sequence[int]]]:
    return [(step.name, step.after, step.integrations) for step in fields.steps]


async def insert(conn: Connection, owner_id: int, fields: PolicyFields) -> int:
    """Store a policy whose integrations were checked to be the owner's, inside the caller's transaction; its id."""
    policy_id: int = await conn.fetchval(
        "INSERT INTO escalation_policies (owner_id, name, repeat_every_s) VALUES ($1, $2, $3) RETURNING id",
        owner_id,
        fields.name,
        fields.repeat_every,
    )
    await _write_steps(conn, policy_id, _steps(fields))
    return policy_id


async def create(pool: asyncpg.Pool, owner_id: int, fields: PolicyFields) -> StoredPolicy:
    """Store a policy whose integrations were checked to be the owner's."""
    async with pool.acquire() as conn, conn.transaction():
        found = await get_owned(conn, owner_id, await insert(conn, owner_id, fields))
    assert found is not None
    return found


async def update_owned(pool: asyncpg.Pool, owner_id: int, policy_id: int, fields: PolicyFields) -> StoredPolicy | None:
    """Replace one of the owner's API-created policies; None if there is none."""
    async with pool.acquire() as conn, conn.transaction():
        updated = await conn.fetchval(
            """
            UPDATE escalation_policies SET name = $3, repeat_every_s = $4, updated_at = now()
            WHERE id = $1 AND owner_id = $2 AND config_key IS NULL
            RETURNING id
            """,
            policy_id,
            owner_id,
            fields.name,
            fields.repeat_every,
        )
        if updated is None:
            return None
        await _write_steps(conn, policy_id, _steps(fields))
        return await get_owned(conn, owner_id, policy_id)


async def delete_owned(conn: PoolOrConnection, owner_id: int, policy_id: int) -> bool:
    """Delete one of the owner's API-created policies no monitor uses; False if none.

    A policy still in use raises ``asyncpg.ForeignKeyViolationError``.
    """
    deleted = await conn.fetchval(
        "DELETE FROM escalation_policies WHERE id = $1 AND owner_id = $2 AND config_key IS NULL RETURNING id",
        policy_id,
        owner_id,
    )
    return deleted is not None


@dataclass(frozen=True)
class ConfiguredPolicy:
    """An ``[[escalation_policies]]`` entry, its steps' integrations named by their keys in the file."""

    owner: str
    key: str
    name: str
    repeat_every_s: float | None
    steps: Sequence[tuple[str, float, Sequence[str]]]
    """``(name, after_s, integration keys)`` in order."""
    monitor_keys: Sequence[str]
    """The owner's config monitors that use it."""


async def sync_from_config(conn: Connection, specs: Sequence[ConfiguredPolicy]) -> int:
    """Make the config-declared policies match the file (inside the caller's transaction).

    Matched by (owner, key). Integrations and monitors must be synced
    already. Config monitors get the policy the file gives them (or none);
    a policy removed from the file is deleted once no monitor uses it, else
    kept for the API-created monitors that still do. Returns how many are declared.
    """
    kept: list[int] = []
    for spec in specs:
        policy_id = await conn.fetchval(
            """
            INSERT INTO escalation_policies (owner_id, config_key, name, repeat_every_s)
            SELECT id, $2, $3, $4 FROM users WHERE username = $1
            ON CONFLICT (owner_id, config_key) DO UPDATE SET
                name = EXCLUDED.name, repeat_every_s = EXCLUDED.repeat_every_s, updated_at = now()
            RETURNING id
            """,
            spec.owner,
            spec.key,
            spec.name,
            spec.repeat_every_s,
        )
        if policy_id is None:
            continue  # the owner has nothing else in the file, so no user was made for them
        kept.append(policy_id)
        keys = sorted({key for _, _, step_keys in spec.steps for key in step_keys})
        rows = await conn.fetch(
            """
            SELECT i.config_key, i.id FROM integrations i JOIN users u ON u.id = i.owner_id
            WHERE u.username = $1 AND i.config_key = ANY($2::text[])
            """,
            spec.owner,
            keys,
        )
        ids: dict[str, int] = {row["config_key"]: row["id"] for row in rows}
        await _write_steps(conn, policy_id, [(n, a, [ids[k] for k in ks if k in ids]) for n, a, ks in spec.steps])
    # Config monitors: the policy their table names, or none.
    await conn.execute(
        """
        UPDATE monitors m SET escalation_policy_id = chosen.policy_id
        FROM (
            SELECT m2.id AS monitor_id, p.id AS policy_id
            FROM monitors m2
            LEFT JOIN unnest($1::text[], $2::text[], $3::text[]) AS d(owner, monitor_key, policy_key)
                 ON d.monitor_key = m2.config_key AND d.owner = (SELECT username FROM users WHERE id = m2.owner_id)
            LEFT JOIN escalation_policies p ON p.owner_id = m2.owner_id AND p.config_key = d.policy_key
            WHERE m2.config_key IS NOT NULL
        ) AS chosen
        WHERE m.id = chosen.monitor_id AND m.escalation_policy_id IS DISTINCT FROM chosen.policy_id
        """,
        [spec.owner for spec in specs for _ in spec.monitor_keys],
        [key for spec in specs for key in spec.monitor_keys],
        [spec.key for spec in specs for _ in spec.monitor_keys],
    )
    await conn.execute(
        """
        DELETE FROM escalation_policies p
        WHERE p.config_key IS NOT NULL AND NOT (p.id = ANY($1::bigint[]))
          AND NOT EXISTS (SELECT 1 FROM monitors m WHERE m.escalation_policy_id = p.id)
        """,
        kept,
    )
    return len(kept)
