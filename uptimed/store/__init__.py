"""SQL, grouped by table: each module holds the queries of one table (``owned`` those common to several).

``statements`` is the exception: it runs data-modifying statements that modules build
(``checks.insert_statement``, ...) alone or joined into one round trip.
"""

from typing import TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

MAX_ID = 2**63 - 1
"""The largest id a ``bigserial`` column holds: larger ids in a request are refused before any query."""

Connection: TypeAlias = asyncpg.Connection | PoolConnectionProxy
"""One connection: the pool's (``async with pool.acquire()``) or one opened on its own."""

PoolOrConnection: TypeAlias = asyncpg.Pool | Connection
"""Where a query runs: the pool (any free connection) or one connection (inside its transaction)."""
