"""Toggle and delete, the same for every table of things a user owns (``monitors``, ``integrations``).

Only rows the config file does not declare (``config_key IS NULL``) change
here, and only the owner's: another user's row, or one declared in the file,
is left alone as if it did not exist.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, Literal, TypeVar

import asyncpg

from uptimed.store import Connection, PoolOrConnection

T = TypeVar("T")


class OwnedTable(Generic[T]):
    """The toggle and delete of one table whose rows have ``owner_id``, ``config_key`` and ``enabled``."""

    def __init__(
        self, table: Literal["monitors", "integrations"], columns: str, from_row: Callable[[asyncpg.Record], T]
    ) -> None:
        self.table = table
        self.columns = columns
        self.from_row = from_row

    async def toggle(self, conn: PoolOrConnection, owner_id: int, row_id: int) -> T | None:
        """Flip ``enabled`` of one of the owner's rows not declared in the file; the row after, None if none."""
        row = await conn.fetchrow(
            f"""
            UPDATE {self.table} SET enabled = NOT enabled, updated_at = now()
            WHERE id = $1 AND owner_id = $2 AND config_key IS NULL
            RETURNING {self.columns}
            """,
            row_id,
            owner_id,
        )
        return self.from_row(row) if row else None

    async def delete(self, conn: PoolOrConnection, owner_id: int, row_id: int) -> bool:
        """Delete one of the owner's rows not declared in the file (what hangs off it goes too); False if none."""
        deleted = await conn.fetchval(
            f"DELETE FROM {self.table} WHERE id = $1 AND owner_id = $2 AND config_key IS NULL RETURNING id",
            row_id,
            owner_id,
        )
        return deleted is not None

    async def count_made(self, conn: PoolOrConnection, owner_id: int) -> int:
        """How many rows the owner made through the API or the pages (the file's are not counted)."""
        count: int = await conn.fetchval(
            f"SELECT count(*) FROM {self.table} WHERE owner_id = $1 AND config_key IS NULL", owner_id
        )
        return count

    async def lock_owner(self, conn: Connection, owner_id: int) -> None:
        """Hold, until the transaction ends, the owner's lock on adding rows: counting then inserting stays exact."""
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, $2))", self.table, owner_id)
