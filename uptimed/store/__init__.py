"""SQL, grouped by table: each module holds the queries of one table (``owned`` those common to several)."""

MAX_ID = 2**63 - 1
"""The largest id a ``bigserial`` column holds: larger ids in a request are refused before any query."""
