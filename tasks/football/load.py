"""Load raw football snapshots from the lake into the warehouse, each lake file exactly once.

A tick loads only the snapshots it was told about (``keys``: the ones the change detection in
``tasks/football/snapshots.py`` landed and the warehouse does not hold yet), so its cost does not
depend on how many snapshots the lake keeps; without ``keys`` the whole lake prefix is scanned
(first load, repair, full refresh). Each load also replaces the touched seasons' rows of the small
``football_snapshots`` table (one row per distinct snapshot: content hash, first seen, last confirmed).

dev: DuckDB tables ``raw.football_standings`` / ``raw.football_scorers``, one row per lake file
(file name, competition, season, fetched-at, the JSON document). ``file_name`` is the primary key
and files already present are skipped, so re-runs load nothing twice.

prod (COPY INTO Snowflake): ``tasks/football/snowflake.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from tasks.core.lake import Lake
from tasks.football.keys import SNAPSHOTS_TABLE, TABLES, duckdb_table_keys, raw_root_key
from tasks.football.land import RAW_PREFIX, parse_raw_key
from tasks.football.lineage import loading

DUCKDB_SCHEMA = "raw"
SNAPSHOT_COLUMNS = (
    "endpoint",
    "competition_code",
    "season_year",
    "file_name",
    "content_sha256",
    "matchday",
    "first_seen_at",
    "last_confirmed_at",
    "confirmations",
)


def _duckdb_ddl() -> list[str]:
    ddl = [f"create schema if not exists {DUCKDB_SCHEMA}"]
    for table in TABLES.values():
        ddl.append(
            f"create table if not exists {DUCKDB_SCHEMA}.{table} ("
            "file_name varchar primary key, competition_code varchar not null, season_year integer not null, "
            "fetched_at timestamp not null, document json not null, loaded_at timestamp not null)"
        )
    ddl.append(
        f"create table if not exists {DUCKDB_SCHEMA}.{SNAPSHOTS_TABLE} ("
        "endpoint varchar not null, competition_code varchar not null, season_year integer not null, "
        "file_name varchar primary key, content_sha256 varchar not null, matchday integer, "
        "first_seen_at timestamp not null, last_confirmed_at timestamp not null, confirmations integer not null, "
        "loaded_at timestamp not null)"
    )
    return ddl


def utc_naive(iso: str) -> datetime:
    return datetime.fromisoformat(iso).astimezone(UTC).replace(tzinfo=None)


def season_groups(snapshots: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str, int], list[Mapping[str, Any]]]:
    groups: dict[tuple[str, str, int], list[Mapping[str, Any]]] = {}
    for row in snapshots:
        groups.setdefault((row["endpoint"], row["competition_code"], int(row["season_year"])), []).append(row)
    return groups


def _replace_snapshots_duckdb(con: Any, snapshots: list[Mapping[str, Any]], loaded_at: datetime) -> int:
    """Replace the rows of every (endpoint, competition, season) in ``snapshots`` with these ones."""
    for (endpoint, competition, season), rows in season_groups(snapshots).items():
        con.execute(
            f"delete from {DUCKDB_SCHEMA}.{SNAPSHOTS_TABLE} "
            "where endpoint = ? and competition_code = ? and season_year = ?",
            [endpoint, competition, season],
        )
        con.executemany(
            f"insert into {DUCKDB_SCHEMA}.{SNAPSHOTS_TABLE} ({', '.join(SNAPSHOT_COLUMNS)}, loaded_at) "
            f"values ({', '.join('?' * (len(SNAPSHOT_COLUMNS) + 1))})",
            [
                (
                    r["endpoint"],
                    r["competition_code"],
                    int(r["season_year"]),
                    r["file_name"],
                    r["content_sha256"],
                    r["matchday"],
                    utc_naive(r["first_seen_at"]),
                    utc_naive(r["last_confirmed_at"]),
                    r["confirmations"],
                    loaded_at,
                )
                for r in rows
            ],
        )
    return len(snapshots)


def load_duckdb(
    lake: Lake,
    warehouse: Path,
    keys: Mapping[str, Iterable[str]] | None = None,
    snapshots: list[Mapping[str, Any]] | None = None,
) -> dict[str, int]:
    """Insert raw football lake files the DuckDB warehouse does not hold yet; rows added per endpoint.

    ``keys`` (endpoint -> lake keys) names the files to load; None scans the whole raw prefix.
    ``snapshots`` replaces the matching seasons' rows of ``raw.football_snapshots`` in the same transaction.
    """
    import duckdb

    warehouse.parent.mkdir(parents=True, exist_ok=True)
    added: dict[str, int] = {}
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    with duckdb.connect(str(warehouse)) as con:
        for statement in _duckdb_ddl():
            con.execute(statement)
        con.execute("begin")
        for endpoint, table in TABLES.items():
            if keys is None:
                candidates = lake.list(f"{RAW_PREFIX}/{endpoint}/")
                present = {row[0] for row in con.execute(f"select file_name from {DUCKDB_SCHEMA}.{table}").fetchall()}
            else:
                candidates = sorted(set(keys.get(endpoint) or ()))
                present = (
                    {
                        row[0]
                        for row in con.execute(
                            f"select file_name from {DUCKDB_SCHEMA}.{table} where file_name in (select unnest(?))",
                            [candidates],
                        ).fetchall()
                    }
                    if candidates
                    else set()
                )
            rows = []
            for key in candidates:
                meta = parse_raw_key(key)
                if key in present or meta is None:
                    continue
                body = lake.read(key)
                if body is None:
                    continue
                fetched_at = datetime.fromisoformat(meta["fetched_at"]).replace(tzinfo=None)
                rows.append(
                    (key, meta["competition"], int(meta["season"]), fetched_at, body.decode("utf-8"), loaded_at)
                )
            if rows:
                con.executemany(
                    f"insert or ignore into {DUCKDB_SCHEMA}.{table} "
                    "(file_name, competition_code, season_year, fetched_at, document, loaded_at) values (?, ?, ?, ?, ?, ?)",
                    rows,
                )
            added[endpoint] = len(rows)
        if snapshots is not None:
            added["snapshots"] = _replace_snapshots_duckdb(con, snapshots, loaded_at)
        con.execute("commit")
    return added


@task(name="load-football-duckdb", cache_policy=NO_CACHE)
def load_raw_duckdb(
    lake: Lake, warehouse: Path, keys: dict[str, list[str]] | None = None, snapshots: list[dict[str, Any]] | None = None
) -> dict[str, int]:
    """Load new raw football lake files into the DuckDB warehouse (each file once); materialize the tables that grew."""
    with loading(raw_root_key(lake.uri(RAW_PREFIX)), duckdb_table_keys(warehouse), by="duckdb") as grown:
        added = load_duckdb(lake, warehouse, keys, snapshots)
        grown.update(added)
    get_run_logger().info("DuckDB raw football rows added: %s", added)
    return added
