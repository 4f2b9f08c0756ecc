"""Football: football-data.org standings and top scorers → data lake → warehouse → dbt marts.

For each competition, fetches ``/v4/competitions/{code}/standings`` and ``/scorers`` within the
API's per-minute budget (conditionally, with the validators of the last response), validates each
body against the fields the models use (quarantining bad ones) and lands it as received under
``raw/football/...`` only if its content differs from the last snapshot of that competition,
season and endpoint (``tasks/football/snapshots.py``; an unchanged one is recorded as confirmed in
the lake manifest). Only when something landed (or the warehouse is behind) does it load the new
files into the warehouse and build the dbt project ``dbt/football`` (history, current standings,
top scorers, team top scorers) incrementally; an unchanged tick never connects to the warehouse.
Deployed every 5 minutes; see docs/football.md for what a tick costs.

Locally (``target=dev``, the default) the lake is ``$INSIGHTFLOW_HOME/lake`` and the warehouse the
DuckDB file shared with the InsightFlow flow::

    FOOTBALL_DATA_TOKEN=... python flows/football.py --competitions PL BL1
    python flows/football.py --sample      # offline: a loopback server serves a deterministic sample

``target=prod`` lands in S3 (``S3Bucket`` block) and loads Snowflake with COPY INTO through the
``insightflow-snowflake`` connector block; see docs/football.md for the one-time Snowflake setup. The
parameters are what a person picks per tick; how the tick is wired (home, API or sample, blocks, the
Snowflake stage, dbt selection) is the ``settings`` form (tasks/football/settings.py); the command
line is tasks/football/cli.py.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any, Literal

from prefect import flow

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tasks.core import orchestration
from tasks.football import cli, lineage
from tasks.football.api import ENDPOINTS, endpoint_url, fetch_endpoint
from tasks.football.freshness import check_standings_lateness
from tasks.football.report import publish_football_report, republish_football_report
from tasks.football.sample.data import SAMPLE_TOKEN
from tasks.football.sample.server import SampleServer
from tasks.football.settings import FootballSettings, competition_codes, open_runtime
from tasks.football.snapshots import Outcome, read_manifest, record_snapshot, validators_for
from tasks.football.summary import finish_tick
from tasks.football.warehouse import sync_warehouse

__all__ = ["FootballSettings", "football"]
LOCAL_SETTINGS = FootballSettings()  # frozen: one shared default is safe


# No flow retries (tasks/core/orchestration.py): the next tick, at most five minutes away, is the retry.
@flow(name="football", retries=0)
def football(
    competitions: list[str] | None = None,
    season: int | None = None,
    target: Literal["dev", "prod"] = "dev",
    full_check: bool = False,
    full_refresh: bool = False,
    settings: FootballSettings = LOCAL_SETTINGS,
) -> dict[str, Any]:
    """Land football-data.org standings and scorers that changed since the last snapshot, then load and build only if something did."""
    # Events wait out a Prefect API outage instead of being dropped (tasks/core/orchestration.py).
    with orchestration.events_ride_out_api_outages():
        codes = competition_codes(competitions)
        outcomes: list[Outcome] = []
        urls: dict[tuple[str, str], str] = {}
        with contextlib.ExitStack() as stack:
            sample = None
            if settings.sample:
                server = stack.enter_context(SampleServer())
                if settings.sample_matchday is not None:  # the season as it stood after that many matchdays
                    server.play(settings.sample_matchday)
                sample = (server.url, SAMPLE_TOKEN)
            run = stack.enter_context(open_runtime(target, settings, sample))

            for code in codes:
                for endpoint in ENDPOINTS:
                    manifest = read_manifest(run.lake, code, endpoint)
                    url = urls[code, endpoint] = endpoint_url(run.session.root, code, endpoint, season)
                    fetched = fetch_endpoint(run.session, code, endpoint, season, validators_for(manifest, url))
                    outcomes.append(record_snapshot(run.lake, fetched, manifest))
            # In season, a matchday that stopped moving while the calendar says fixtures were due.
            lateness = check_standings_lateness(run.lake, outcomes, settings.freshness_as_of, settings.stale_after_days)
            sync = sync_warehouse(run, outcomes, codes, full_check=full_check, full_refresh=full_refresh)

        if sync.dbt_summary is not None:
            upstream = lineage.report_upstream(settings.home, target)
            report = publish_football_report(
                run.lake, target, settings.home, settings.snowflake_block, upstream=upstream
            )
        else:  # nothing rebuilt: the last published table is still the table, and no warehouse is opened
            report = republish_football_report(run.lake)
        return finish_tick(run, outcomes, urls, sync, lateness, report)


def main(argv: list[str] | None = None) -> int:
    """``python flows/football.py [--sample] ...``: run the flow for a person at a terminal."""
    return cli.main(football, argv)


if __name__ == "__main__":
    sys.exit(main())
