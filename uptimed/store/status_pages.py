"""SQL for ``status_pages``: each user's one public status page (opt-in, at ``/status/{slug}``).

A page lists monitors by id; a monitor deleted since simply drops out of it
when the page is read, so the stored list never needs cleaning up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from uptimed.store import PoolOrConnection


class SlugTaken(Exception):
    """Another user's status page already has this slug."""


@dataclass(frozen=True)
class StatusPage:
    owner_id: int
    slug: str
    title: str
    published: bool
    monitor_ids: list[int]
    """The owner's monitors shown, in the order chosen; deleted ones already left out."""
    updated_at: datetime


# Keeps only ids of monitors the owner still has, in the stored order.
_SELECT = """
    SELECT p.owner_id, p.slug, p.title, p.published, p.updated_at,
           ARRAY(
               SELECT m.id FROM monitors m
               WHERE m.owner_id = p.owner_id AND m.id = ANY(p.monitor_ids)
               ORDER BY array_position(p.monitor_ids, m.id)
           ) AS monitor_ids
    FROM status_pages p
"""


def _from_row(row: asyncpg.Record) -> StatusPage:
    return StatusPage(
        owner_id=row["owner_id"],
        slug=row["slug"],
        title=row["title"],
        published=row["published"],
        monitor_ids=list(row["monitor_ids"]),
        updated_at=row["updated_at"],
    )


async def get_for_owner(conn: PoolOrConnection, owner_id: int) -> StatusPage | None:
    """The owner's status page, published or not; None before it was first saved."""
    row = await conn.fetchrow(f"{_SELECT} WHERE p.owner_id = $1", owner_id)
    return _from_row(row) if row else None


async def get_published_by_slug(conn: PoolOrConnection, slug: str) -> StatusPage | None:
    """The page at ``slug`` if its owner published it; None otherwise (unknown and unpublished alike)."""
    row = await conn.fetchrow(f"{_SELECT} WHERE p.slug = $1 AND p.published", slug)
    return _from_row(row) if row else None


async def save(
    conn: PoolOrConnection,
    owner_id: int,
    *,
    slug: str,
    title: str,
    published: bool,
    monitor_ids: Sequence[int],
) -> StatusPage:
    """Create or replace the owner's page; :class:`SlugTaken` when another page has ``slug``.

    Ids that are not the owner's monitors are dropped, so a forged form cannot
    put another user's monitor on this page.
    """
    try:
        row = await conn.fetchrow(
            """
            WITH chosen AS (
                SELECT coalesce(array_agg(m.id ORDER BY array_position($5::bigint[], m.id)), '{}') AS ids
                FROM monitors m WHERE m.owner_id = $1 AND m.id = ANY($5::bigint[])
            )
            INSERT INTO status_pages (owner_id, slug, title, published, monitor_ids)
            SELECT $1, $2, $3, $4, chosen.ids FROM chosen
            ON CONFLICT (owner_id) DO UPDATE SET
                slug = EXCLUDED.slug, title = EXCLUDED.title, published = EXCLUDED.published,
                monitor_ids = EXCLUDED.monitor_ids, updated_at = now()
            RETURNING owner_id, slug, title, published, monitor_ids, updated_at
            """,
            owner_id,
            slug,
            title,
            published,
            list(monitor_ids),
        )
    except asyncpg.UniqueViolationError:
        raise SlugTaken(slug) from None
    assert row is not None, "INSERT ... ON CONFLICT DO UPDATE ... RETURNING gives back its row"
    return _from_row(row)
