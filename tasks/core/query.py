"""How reports read a warehouse: a ``Query`` takes SQL and returns rows as dicts, whatever the engine.

Both reports read DuckDB locally (Athena or Snowflake in prod, each through its own block); the DuckDB
reader is shared here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

Query = Callable[[str], list[dict[str, Any]]]


def duckdb_query(warehouse: str | Path) -> Query:
    """Run SQL on a DuckDB warehouse; read-only unless this process already holds it open read-write."""
    import duckdb

    def query(sql: str) -> list[dict[str, Any]]:
        try:
            con = duckdb.connect(str(warehouse), read_only=True)
        except duckdb.ConnectionException:  # dbt-duckdb's instance in this process: reuse its configuration
            con = duckdb.connect(str(warehouse))
        try:
            cursor = con.execute(sql)
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        finally:
            con.close()

    return query
