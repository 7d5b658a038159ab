"""Data-modifying statements that can run alone or together, as one statement in one round trip.

A store module builds a :class:`Statement` (its SQL numbers its arguments
from ``$1``); :func:`execute` runs one, :func:`execute_together` joins several
into one ``WITH`` statement, which PostgreSQL runs atomically like any single
statement. The evaluator writes a quiet batch this way (check rows, states,
wake times, region activity): one round trip instead of five with ``BEGIN``
and ``COMMIT``. The parts must not touch the same rows: they see one snapshot.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from uptimed.store import PoolOrConnection

_PLACEHOLDER = re.compile(r"\$(\d+)")


@dataclass(frozen=True)
class Statement:
    """One INSERT, UPDATE or DELETE and its arguments, numbered from ``$1``."""

    sql: str
    args: tuple[object, ...]


def _renumbered(sql: str, offset: int) -> str:
    """``sql`` with its placeholders moved up by ``offset`` ($1 becomes $(1 + offset))."""
    return _PLACEHOLDER.sub(lambda found: f"${int(found.group(1)) + offset}", sql)


async def execute(conn: PoolOrConnection, statement: Statement | None) -> None:
    """Run ``statement`` (nothing to do when None)."""
    if statement is not None:
        await conn.execute(statement.sql, *statement.args)


async def execute_together(conn: PoolOrConnection, statements: Iterable[Statement | None]) -> None:
    """Run the statements as one, in one round trip: all of them take effect or none."""
    parts = [s for s in statements if s is not None]
    if len(parts) <= 1:
        await execute(conn, parts[0] if parts else None)
        return
    ctes: list[str] = []
    args: list[object] = []
    for n, part in enumerate(parts):
        ctes.append(f"s{n} AS ({_renumbered(part.sql, len(args)).strip()})")
        args.extend(part.args)
    await conn.execute("WITH " + ",\n".join(ctes) + "\nSELECT 1", *args)
