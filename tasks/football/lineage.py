"""Football's asset keys: API endpoint → raw JSON in the lake → warehouse raw table → dbt models → standings report.

One key per dataset, never per file: the lake dataset is ``<lake>/raw/football/<endpoint>`` (competitions
and seasons are its partitions), the warehouse raw table is ``duckdb://<warehouse>/raw/<table>``
locally and ``snowflake://<DATABASE>/<SCHEMA>/<TABLE>`` in prod (the relation the COPY INTO fills), and
the dbt sources ``football_raw.<table>`` take those keys. Each source URL is one endpoint of one
competition, its query string (``?season=``) left out.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from tasks.core import assets
from tasks.core.dbt_assets import model_keys
from tasks.core.lake import Lake
from tasks.core.lineage import Lineage, publish_lineage
from tasks.football.api import ENDPOINTS
from tasks.football.land import RAW_PREFIX

if TYPE_CHECKING:
    from tasks.football.snapshots import Outcome

# The warehouse raw tables, by endpoint (and the snapshot ledger's), as tasks/football/load.py creates them.
TABLES = {"standings": "football_standings", "scorers": "football_scorers"}
SNAPSHOTS_TABLE = "football_snapshots"
FLOW = "football"
DBT_SOURCE = "football_raw"
SNAPSHOTS = "snapshots"  # the ledger table, fed from every endpoint's lake dataset
# The marts the standings report reads (tasks/football/report.py).
MARTS_READ = ("fct_football_standings_current", "fct_football_top_scorers_current", "fct_football_standings_history")


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


@contextmanager
def loading(raw_root: str, table_keys: Mapping[str, str], by: str) -> Iterator[dict[str, int]]:
    """Around a load: fill the yielded dict with rows added per endpoint; each table that got rows is materialized.

    A load that raises fails every table's materialization with the cause.
    """
    added: dict[str, int] = {}
    try:
        yield added
    except Exception as exc:
        for endpoint, key in table_keys.items():
            name = key.rsplit("/", 1)[-1]
            cause = f"{type(exc).__name__}: {exc}"
            assets.failed(key, upstream_of(raw_root, endpoint), cause, name=name, layer="raw", by=by)
        raise
    for endpoint, rows in added.items():
        if rows and endpoint in table_keys:
            key = table_keys[endpoint]
            name = key.rsplit("/", 1)[-1]
            with assets.materialized(key, upstream_of(raw_root, endpoint), name=name, layer="raw", by=by) as asset:
                asset.add({"rows_added": rows})


def report_upstream(home_dir: Path, target: str) -> list[str]:
    manifest = home_dir / "dbt" / f"football-{target}" / "target" / "manifest.json"
    try:
        return sorted(model_keys(manifest, list(MARTS_READ)).values())
    except (OSError, ValueError):
        return []


def publish(lake: Lake, outcomes: list[Outcome], urls: Mapping[tuple[str, str], str]) -> Lineage:
    """The ``football-lineage`` artifact; ``urls`` maps (competition, endpoint) to the URL fetched."""
    sources = {}
    for o in outcomes:
        url = urls.get((o.competition, o.endpoint))
        if url:
            sources[assets.url_key(url)] = "new snapshot" if o.landed else o.status.replace("_", " ")
    return publish_lineage(FLOW, lake, sources)
