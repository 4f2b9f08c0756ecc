"""Load raw football snapshots into Snowflake with COPY INTO (the prod target).

Through a prefect-snowflake ``SnowflakeConnector`` block. Idempotent DDL creates
the RAW schema, a JSON file format, the tables (``document variant`` plus file name and load
time) and an external stage over the lake's ``raw/football/`` prefix; ``COPY INTO ... FILES=(…)``
then loads exactly the named snapshots (``PATTERN=`` over this run's competitions and seasons when
scanning), and Snowflake's load metadata skips any file already loaded into the table. The
one-time admin setup (storage integration, grants) is ``sql/snowflake_setup.sql``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from tasks.core.lake import Lake
from tasks.football.api import ENDPOINTS
from tasks.football.keys import raw_root_key, snowflake_table_keys
from tasks.football.land import RAW_PREFIX, parse_raw_key
from tasks.football.lineage import loading
from tasks.football.load import SNAPSHOT_COLUMNS, SNAPSHOTS_TABLE, TABLES, season_groups, utc_naive

# Snowflake takes at most 1,000 names in one COPY ... FILES = (...).
COPY_FILES_MAX = 1000
SNOWFLAKE_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")
# Only stand-ins (fakesnow) and private endpoints need these; the connector block has no host fields.
CONNECTION_OVERRIDES = ("SNOWFLAKE_HOST", "SNOWFLAKE_PORT", "SNOWFLAKE_PROTOCOL")


@dataclass(frozen=True)
class SnowflakeLayout:
    """Names of the Snowflake objects the prod load owns (schema-qualified against the block's database)."""

    schema: str = "RAW"
    stage: str = "FOOTBALL_LAKE"
    file_format: str = "FOOTBALL_JSON"

    def __post_init__(self) -> None:
        for name in (self.schema, self.stage, self.file_format):
            if not SNOWFLAKE_IDENTIFIER.match(name):
                raise ValueError(f"not a plain Snowflake identifier: {name!r}")

    def table(self, endpoint: str) -> str:
        return f"{self.schema}.{TABLES[endpoint].upper()}"

    @property
    def snapshots_table(self) -> str:
        return f"{self.schema}.{SNAPSHOTS_TABLE.upper()}"


def stage_url(lake: Lake) -> str:
    """The lake's ``raw/football/`` prefix as a stage URL (``s3://…/`` in prod, ``file:///…/`` for stand-ins)."""
    uri = lake.uri(RAW_PREFIX)
    if "://" not in uri:
        uri = Path(uri).resolve().as_uri()
    return uri.rstrip("/") + "/"


def snowflake_ddl(
    layout: SnowflakeLayout, url: str, storage_integration: str | None, existing_tables: frozenset[str] = frozenset()
) -> list[str]:
    """Idempotent DDL: RAW schema, JSON file format, raw tables and the external stage over the lake prefix.

    Tables in ``existing_tables`` (upper-case names) are left out: fakesnow 0.12.1 wipes a table's load
    history on ``create table if not exists`` even when the table exists (Snowflake does not), which
    would make the stand-in reload every file.
    """
    if "'" in url:
        raise ValueError(f"stage URL must not contain quotes: {url!r}")
    if storage_integration and not SNOWFLAKE_IDENTIFIER.match(storage_integration):
        raise ValueError(f"not a plain Snowflake identifier: {storage_integration!r}")
    ddl = [
        f"create schema if not exists {layout.schema}",
        f"create file format if not exists {layout.schema}.{layout.file_format} type = json",
    ]
    for endpoint in ENDPOINTS:
        if TABLES[endpoint].upper() in existing_tables:
            continue
        ddl.append(
            f"create table if not exists {layout.table(endpoint)} "
            "(file_name varchar not null, document variant, loaded_at timestamp_ntz)"
        )
    if SNAPSHOTS_TABLE.upper() not in existing_tables:
        ddl.append(
            f"create table if not exists {layout.snapshots_table} (endpoint varchar not null, "
            "competition_code varchar not null, season_year integer not null, file_name varchar not null, "
            "content_sha256 varchar not null, matchday integer, first_seen_at timestamp_ntz not null, "
            "last_confirmed_at timestamp_ntz not null, confirmations integer not null, loaded_at timestamp_ntz)"
        )
    integration = f" storage_integration = {storage_integration}" if storage_integration else ""
    ddl.append(
        f"create stage if not exists {layout.schema}.{layout.stage} url = '{url}'{integration} "
        f"file_format = (format_name = '{layout.schema}.{layout.file_format}')"
    )
    return ddl


def copy_pattern(competitions: Iterable[str], seasons: Iterable[int | str]) -> str:
    """A PATTERN regex matching this run's snapshot files, so COPY does not list the whole history."""
    codes = "|".join(sorted({re.escape(c) for c in competitions}))
    years = "|".join(sorted({str(int(s)) for s in seasons}))
    return f".*competition=({codes})/season=({years})/[0-9]{{8}}T[0-9]{{6}}[.][0-9]{{6}}Z[.]json"


def copy_sql(layout: SnowflakeLayout, endpoint: str, competitions: Iterable[str], seasons: Iterable[int | str]) -> str:
    """``COPY INTO`` one raw table from the stage; load metadata makes re-running it a no-op."""
    return (
        f"copy into {layout.table(endpoint)} (file_name, document, loaded_at) "
        f"from (select metadata$filename, $1, current_timestamp()::timestamp_ntz "
        f"from @{layout.schema}.{layout.stage}/{endpoint}/) "
        f"pattern = '{copy_pattern(competitions, seasons)}' "
        f"file_format = (format_name = '{layout.schema}.{layout.file_format}')"
    )


def stage_relative(key: str) -> str:
    """A raw lake key as Snowflake names the file: relative to the stage over ``raw/football/``."""
    if parse_raw_key(key) is None or not key.startswith(f"{RAW_PREFIX}/"):
        raise ValueError(f"not a football snapshot key: {key!r}")
    return key[len(RAW_PREFIX) + 1 :]


def copy_files_sql(layout: SnowflakeLayout, endpoint: str, keys: Iterable[str]) -> str:
    """``COPY INTO`` one raw table from exactly the named snapshot files (no listing of the stage path)."""
    prefix = f"{endpoint}/"
    names = []
    for key in keys:
        relative = stage_relative(key)
        if not relative.startswith(prefix):
            raise ValueError(f"snapshot {key!r} is not a {endpoint} snapshot")
        names.append(f"'{relative[len(prefix) :]}'")
    return (
        f"copy into {layout.table(endpoint)} (file_name, document, loaded_at) "
        f"from (select metadata$filename, $1, current_timestamp()::timestamp_ntz "
        f"from @{layout.schema}.{layout.stage}/{endpoint}/) "
        f"files = ({', '.join(names)}) "
        f"file_format = (format_name = '{layout.schema}.{layout.file_format}')"
    )


def replace_snapshots_snowflake(connector: Any, layout: SnowflakeLayout, snapshots: list[Mapping[str, Any]]) -> int:
    """Replace the touched seasons' rows of ``RAW.FOOTBALL_SNAPSHOTS`` (file names relative to the stage)."""
    columns = ", ".join(SNAPSHOT_COLUMNS)
    values = ", ".join(f"%({c})s" for c in SNAPSHOT_COLUMNS)
    for (endpoint, competition, season), rows in season_groups(snapshots).items():
        connector.execute(
            f"delete from {layout.snapshots_table} where endpoint = %(endpoint)s "
            "and competition_code = %(competition)s and season_year = %(season)s",
            parameters={"endpoint": endpoint, "competition": competition, "season": season},
        )
        connector.execute_many(
            f"insert into {layout.snapshots_table} ({columns}, loaded_at) "
            f"values ({values}, current_timestamp()::timestamp_ntz)",
            seq_of_parameters=[
                {
                    **{c: r[c] for c in SNAPSHOT_COLUMNS},
                    "file_name": stage_relative(r["file_name"]),
                    "season_year": int(r["season_year"]),
                    "first_seen_at": utc_naive(r["first_seen_at"]).isoformat(sep=" "),
                    "last_confirmed_at": utc_naive(r["last_confirmed_at"]).isoformat(sep=" "),
                }
                for r in rows
            ],
        )
    return len(snapshots)


def connection_overrides(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """host/port/protocol from ``SNOWFLAKE_HOST``/``_PORT``/``_PROTOCOL`` when set (stand-ins, private link)."""
    env = os.environ if env is None else env
    if not env.get("SNOWFLAKE_HOST"):
        return {}
    return {
        "host": env["SNOWFLAKE_HOST"],
        "port": int(env.get("SNOWFLAKE_PORT") or 443),
        "protocol": env.get("SNOWFLAKE_PROTOCOL") or "https",
    }


def open_connector(block_name: str) -> Any:
    """Load the ``SnowflakeConnector`` block and connect it (applying any connection overrides)."""
    from prefect_snowflake.database import SnowflakeConnector

    connector = SnowflakeConnector.load(block_name)
    if overrides := connection_overrides():
        connector.get_connection(**overrides)
    return connector


def load_snowflake(
    connector: Any,
    layout: SnowflakeLayout,
    url: str,
    storage_integration: str | None,
    competitions: Iterable[str],
    seasons: Iterable[int | str],
    keys: Mapping[str, Iterable[str]] | None = None,
    snapshots: list[Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Run the DDL and the COPYs; returns Snowflake's per-file results (file, status, rows_loaded).

    With ``keys`` (endpoint -> lake keys) each COPY names exactly those files; without, it matches
    this run's competitions and seasons by PATTERN. ``snapshots`` then replaces the touched seasons'
    rows of the snapshots table.
    """
    competitions, seasons = list(competitions), list(seasons)
    connector.execute(f"create schema if not exists {layout.schema}")
    existing = connector.fetch_all(
        "select table_name from information_schema.tables where table_schema = %(schema)s",
        parameters={"schema": layout.schema.upper()},
    )
    connector.reset_cursors()
    existing_tables = frozenset(str(row[0]).upper() for row in existing)
    for statement in snowflake_ddl(layout, url, storage_integration, existing_tables):
        connector.execute(statement)
    results: list[dict[str, Any]] = []
    statements: list[tuple[str, str]] = []
    if keys is not None:
        for endpoint in ENDPOINTS:
            names = sorted(set(keys.get(endpoint) or ()))
            for start in range(0, len(names), COPY_FILES_MAX):
                statements.append((endpoint, copy_files_sql(layout, endpoint, names[start : start + COPY_FILES_MAX])))
    elif competitions and seasons:
        statements = [(endpoint, copy_sql(layout, endpoint, competitions, seasons)) for endpoint in ENDPOINTS]
    for endpoint, statement in statements:
        rows = connector.fetch_all(statement)
        # prefect-snowflake reuses a cursor per identical statement; without this a re-run reads nothing.
        connector.reset_cursors()
        for row in rows:
            if len(row) < 4:  # "Copy executed with 0 files processed."
                continue
            results.append({"endpoint": endpoint, "file": row[0], "status": row[1], "rows_loaded": row[3]})
    if snapshots:
        replace_snapshots_snowflake(connector, layout, snapshots)
    return results


def snowflake_dbt_env(connector: Any, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The ``SNOWFLAKE_*`` variables dbt's ``prod`` profile reads, taken from the connector block (never logged)."""
    credentials = connector.credentials
    password = credentials.password.get_secret_value() if credentials.password else ""
    passphrase = credentials.private_key_passphrase.get_secret_value() if credentials.private_key_passphrase else ""
    values = {
        "SNOWFLAKE_ACCOUNT": credentials.account,
        "SNOWFLAKE_USER": credentials.user or "",
        "SNOWFLAKE_PASSWORD": password,
        "SNOWFLAKE_PRIVATE_KEY_PATH": str(credentials.private_key_path or ""),
        "SNOWFLAKE_PRIVATE_KEY_PASSPHRASE": passphrase,
        "SNOWFLAKE_ROLE": credentials.role or "",
        "SNOWFLAKE_WAREHOUSE": connector.warehouse,
        "SNOWFLAKE_DATABASE": connector.database,
    }
    overrides = connection_overrides(env)
    values.update({f"SNOWFLAKE_{k.upper()}": str(v) for k, v in overrides.items()})
    return {k: v for k, v in values.items() if v}


@task(
    name="copy-into-snowflake-raw",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=[10, 60],
    retry_condition_fn=lambda task, run, state: _is_transient_snowflake_error(state),
)
def copy_into_raw(
    block_name: str,
    storage_integration: str | None,
    competitions: list[str],
    seasons: list[int],
    stage: str,
    layout: SnowflakeLayout = SnowflakeLayout(),
    keys: dict[str, list[str]] | None = None,
    snapshots: list[dict[str, Any]] | None = None,
) -> dict[str, int]:
    """Create the RAW objects if needed and COPY this run's snapshot files from the stage URL into Snowflake."""
    log = get_run_logger()
    with open_connector(block_name) as connector:
        table_keys = snowflake_table_keys(connector.database, layout.schema)
        with loading(raw_root_key(stage), table_keys, by="snowflake") as grown:
            results = load_snowflake(
                connector, layout, stage, storage_integration, competitions, seasons, keys, snapshots
            )
            for row in results:
                if row["status"] == "LOADED":
                    grown[row["endpoint"]] = grown.get(row["endpoint"], 0) + int(row["rows_loaded"] or 0)
            grown["snapshots"] = len(snapshots or [])
    counts: dict[str, int] = {}
    for row in results:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    log.info("Snowflake COPY INTO results by status: %s", counts or "no files matched")
    return counts


def _is_transient_snowflake_error(state: Any) -> bool:
    try:
        state.result()
    except Exception as exc:
        from snowflake.connector.errors import OperationalError, ProgrammingError

        return isinstance(exc, OperationalError) and not isinstance(exc, ProgrammingError)
    return False
