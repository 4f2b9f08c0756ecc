"""Football's lineage: API endpoint → raw JSON in the lake → warehouse raw table → dbt models → standings report.

The keys themselves are in tasks/football/keys.py. Each source URL is one endpoint of one competition,
its query string (``?season=``) left out.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

from tasks.core import assets, config
from tasks.core.dbt.assets import built_model_keys
from tasks.core.lake import Lake
from tasks.core.lineage import Lineage, publish_lineage
from tasks.football.keys import upstream_of

if TYPE_CHECKING:
    from tasks.football.snapshots import Outcome

FLOW = "football"
# The marts the standings report reads (tasks/football/report.py).
MARTS_READ = ("fct_football_standings_current", "fct_football_top_scorers_current", "fct_football_standings_history")


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


def report_upstream(home: str | None, target: str) -> list[str]:
    """The asset keys of the marts the standings report reads, as the last dbt build made them."""
    return built_model_keys(config.dbt_work_dir(home, "football", target), MARTS_READ)


def publish(lake: Lake, outcomes: list[Outcome], urls: Mapping[tuple[str, str], str]) -> Lineage:
    """The ``football-lineage`` artifact; ``urls`` maps (competition, endpoint) to the URL fetched."""
    sources = {}
    for o in outcomes:
        url = urls.get((o.competition, o.endpoint))
        if url:
            sources[assets.url_key(url)] = "new snapshot" if o.landed else o.status.replace("_", " ")
    return publish_lineage(FLOW, lake, sources)
