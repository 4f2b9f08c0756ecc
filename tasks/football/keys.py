"""Football's asset keys, one per dataset: the lake dataset, the warehouse raw tables, the dbt sources.

The lake dataset is ``<lake>/raw/football/<endpoint>`` (competitions and seasons are its partitions),
the warehouse raw table is ``duckdb://<warehouse>/raw/<table>`` locally and
``snowflake://<DATABASE>/<SCHEMA>/<TABLE>`` in prod (the relation the COPY INTO fills), and the dbt
sources ``football_raw.<table>`` take those keys. Its own module so that the steps that land and load
(snapshots, load, snowflake) and the lineage that publishes them share keys without importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from tasks.core import assets
from tasks.core.lake import Lake
from tasks.football.api import ENDPOINTS
from tasks.football.land import RAW_PREFIX

# The warehouse raw tables, by endpoint (and the snapshot ledger's), as tasks/football/load.py creates them.
TABLES = {"standings": "football_standings", "scorers": "football_scorers"}
SNAPSHOTS_TABLE = "football_snapshots"
DBT_SOURCE = "football_raw"
SNAPSHOTS = "snapshots"  # the ledger table, fed from every endpoint's lake dataset


def lake_key(lake: Lake, endpoint: str) -> str:
    """``<lake>/raw/football/<endpoint>``: ``s3://<bucket>/…`` in prod, ``file://<lake>/…`` locally."""
    return f"{raw_root_key(lake.uri(RAW_PREFIX))}/{endpoint}"


def raw_root_key(uri: str) -> str:
    """The key of the lake's ``raw/football`` prefix, from its URI or path (a Snowflake stage URL too)."""
    return assets.location_key(uri)


def _tables() -> dict[str, str]:
    return {**TABLES, SNAPSHOTS: SNAPSHOTS_TABLE}


def duckdb_table_keys(warehouse: Path) -> dict[str, str]:
    """Raw table keys in the DuckDB warehouse (catalog = the file's stem, as dbt-duckdb names it), by endpoint."""
    return {e: assets.clean_key(f"duckdb://{warehouse.stem}/raw/{t}") for e, t in _tables().items()}


def snowflake_table_keys(database: str, schema: str) -> dict[str, str]:
    """Raw table keys in Snowflake (unquoted identifiers, upper case as Snowflake stores them), by endpoint."""
    return {
        e: assets.clean_key(f"snowflake://{database.upper()}/{schema.upper()}/{t.upper()}")
        for e, t in _tables().items()
    }


def dbt_source_keys(table_keys: Mapping[str, str]) -> dict[str, str]:
    """dbt source ``football_raw.<table>`` → the key of the raw table it reads."""
    return {f"{DBT_SOURCE}.{_tables()[e]}": key for e, key in table_keys.items()}


def upstream_of(raw_root: str, endpoint: str) -> list[str]:
    return [f"{raw_root}/{e}" for e in (ENDPOINTS if endpoint == SNAPSHOTS else [endpoint])]
