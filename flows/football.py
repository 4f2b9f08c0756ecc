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
``insightflow-snowflake`` connector block; see docs/football.md for the one-time Snowflake setup.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
from pathlib import Path
from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tasks.core import config, console, orchestration
from tasks.core.dbt.runner import project_dir, project_fingerprint, run_dbt
from tasks.core.lake import open_lake
from tasks.core.locks import home_lock
from tasks.football import lineage
from tasks.football.api import (
    DEFAULT_TOKEN_BLOCK,
    ENDPOINTS,
    FetchSession,
    base_url,
    endpoint_url,
    fetch_endpoint,
    resolve_token,
)
from tasks.football.keys import dbt_source_keys, duckdb_table_keys, snowflake_table_keys
from tasks.football.load import load_raw_duckdb
from tasks.football.report import publish_football_report, republish_football_report
from tasks.football.sample.data import SAMPLE_TOKEN
from tasks.football.sample.server import SampleServer
from tasks.football.snapshots import (
    Outcome,
    SyncPlan,
    mark_synced,
    plan_sync,
    read_manifest,
    record_snapshot,
    validators_for,
)
from tasks.football.snowflake import SnowflakeLayout, copy_into_raw, stage_url

COMPETITION_CODE = re.compile(r"^[A-Z0-9]{2,5}$")


def _competition_codes(competitions: list[str] | None) -> list[str]:
    codes = list(dict.fromkeys(c.strip().upper() for c in (competitions or ["PL"])))
    bad = [c for c in codes if not COMPETITION_CODE.match(c)]
    if bad:
        raise ValueError(f"not football-data.org competition codes: {', '.join(bad)} (e.g. PL, BL1, SA, PD, FL1, CL)")
    return codes


def _dbt_args(select: list[str] | None, full_check: bool, full_refresh: bool) -> list[str]:
    args = ["build", "--select", *select] if select else ["build"]
    if full_refresh:
        args.append("--full-refresh")
    if full_check:
        # Data tests on the big models check only the newest load unless this var is set (macros/football_new_rows.sql).
        args += ["--vars", '{"football_full_check": true}']
    return args


def _dbt_env_dev(home: str | None) -> dict[str, str]:
    return {"INSIGHTFLOW_WAREHOUSE": str(config.warehouse_path(home))}


def _dbt_env_prod(snowflake_block: str) -> dict[str, str]:
    from prefect_snowflake.database import SnowflakeConnector

    from tasks.football.snowflake import snowflake_dbt_env

    return snowflake_dbt_env(SnowflakeConnector.load(snowflake_block))


def _publish(outcomes: list[Outcome], plan: SyncPlan, dbt_summary: Any) -> None:
    landed = sum(o.landed for o in outcomes)
    create_table_artifact(
        [o.row() for o in outcomes],
        key="football-snapshots",
        description=f"{landed} snapshot(s) landed, {len(outcomes) - landed} unchanged "
        "(not_modified: HTTP 304; unchanged: same content hash)",
    )
    if plan.idle:
        unchanged = "\n".join(
            f"- {o.competition} {o.endpoint} {o.season}: {o.status}, snapshot `{o.key}` first seen "
            f"{o.first_seen_at}, confirmed {o.last_confirmed_at}"
            for o in outcomes
        )
        create_markdown_artifact(
            f"## Nothing changed\n\n{unchanged}\n\nNo files landed, no warehouse connection, no dbt build.",
            key="football-tick",
            description="What this football tick did",
        )
    if dbt_summary is not None:
        create_table_artifact(
            dbt_summary.table(),
            key="football-dbt",
            description=f"dbt build of dbt/football on {dbt_summary.target} in {dbt_summary.elapsed_s}s",
        )


# No flow retries (tasks/core/orchestration.py): the next tick, at most five minutes away, is the retry.
@flow(name="football", retries=0)
def football(
    competitions: list[str] | None = None,
    season: int | None = None,
    target: Literal["dev", "prod"] = "dev",
    sample: bool = False,
    sample_matchday: int | None = None,
    home: str | None = None,
    football_base_url: str | None = None,
    token_block: str = DEFAULT_TOKEN_BLOCK,
    snowflake_block: str = "insightflow-snowflake",
    lake_block: str = "insightflow-lake",
    lake_target: Literal["dev", "prod"] | None = None,
    storage_integration: str | None = None,
    snowflake_stage_url: str | None = None,
    run_dbt_build: bool = True,
    dbt_select: list[str] | None = None,
    full_check: bool = False,
    full_refresh: bool = False,
    lock_timeout_s: float = 900.0,
) -> dict[str, Any]:
    """Land football-data.org standings and scorers that changed since the last snapshot, then load and build only if something did."""
    # Events wait out a Prefect API outage instead of being dropped (tasks/core/orchestration.py).
    with orchestration.events_ride_out_api_outages():
        logger = get_run_logger()
        codes = _competition_codes(competitions)
        home_dir = config.insightflow_home(home)
        outcomes: list[Outcome] = []
        urls: dict[tuple[str, str], str] = {}

        with contextlib.ExitStack() as stack:
            if sample:
                server = stack.enter_context(SampleServer())
                if sample_matchday is not None:  # the season as it stood after that many matchdays
                    server.play(sample_matchday)
                root, token = server.url, SAMPLE_TOKEN
                logger.info("sample mode: serving the deterministic football-data.org sample from %s", root)
            else:
                root, token = base_url(football_base_url), resolve_token(token_block)
            session = FetchSession(root=root, token=token)
            stack.callback(session.close)
            lake = open_lake(lake_target or target, home, lake_block)

            for code in codes:
                for endpoint in ENDPOINTS:
                    manifest = read_manifest(lake, code, endpoint)
                    urls[code, endpoint] = endpoint_url(root, code, endpoint, season)
                    validators = validators_for(manifest, urls[code, endpoint])
                    fetched = fetch_endpoint(session, code, endpoint, season, validators)
                    outcomes.append(record_snapshot(lake, fetched, manifest))

            missing = target == "dev" and not config.warehouse_path(home).exists()
            dbt_project = project_fingerprint(project_dir("football")) if run_dbt_build else None
            forced = (
                "warehouse file missing"
                if missing
                else "full check or refresh asked"
                if full_check or full_refresh
                else ""
            )
            plan = plan_sync(
                lake,
                outcomes,
                target,
                dbt_project,
                rescan=full_refresh or missing,
                build=run_dbt_build and bool(forced),
                reason=forced,
            )
            loaded: dict[str, int] | None = None
            dbt_summary = None
            if plan.idle:
                logger.info(
                    "Nothing changed: %d snapshot(s) confirmed unchanged; no load, no dbt, no warehouse connection",
                    len(outcomes),
                )
            else:
                logger.info("Warehouse sync needed: %s", "; ".join(plan.reasons))
                seasons = sorted({int(o.season) for o in outcomes if o.season.isdigit()})
                keys = None if plan.rescan else plan.keys
                if target == "dev":
                    stack.enter_context(home_lock(home_dir, timeout_s=lock_timeout_s, what="football"))
                    loaded = load_raw_duckdb(lake, config.warehouse_path(home), keys, plan.snapshots)
                    env = _dbt_env_dev(home)
                    raw_tables = duckdb_table_keys(config.warehouse_path(home))
                else:
                    loaded = copy_into_raw(
                        snowflake_block,
                        storage_integration,
                        codes,
                        seasons,
                        stage=snowflake_stage_url or stage_url(lake),
                        layout=SnowflakeLayout(),
                        keys=keys,
                        snapshots=plan.snapshots,
                    )
                    env = _dbt_env_prod(snowflake_block) if run_dbt_build else {}
                    raw_tables = snowflake_table_keys(env.get("SNOWFLAKE_DATABASE", ""), SnowflakeLayout().schema)
                if run_dbt_build and plan.build:
                    dbt_summary = run_dbt(
                        "football",
                        target,
                        env,
                        args=_dbt_args(dbt_select, full_check, full_refresh),
                        work_dir=home_dir / "dbt" / f"football-{target}",
                        source_keys=dbt_source_keys(raw_tables),
                    )
                mark_synced(lake, plan, dbt_project if dbt_summary is not None else None)

        orchestration.publish("the run's artifacts", _publish, outcomes, plan, dbt_summary)
        if dbt_summary is not None:
            report = publish_football_report(
                lake, target, home, snowflake_block, upstream=lineage.report_upstream(home_dir, target)
            )
        else:  # nothing rebuilt: the last published table is still the table, and no warehouse is opened
            report = republish_football_report(lake)
        lineage.publish(lake, outcomes, urls)
        return {
            "target": target,
            "lake": lake.uri(),
            "warehouse": str(config.warehouse_path(home)) if target == "dev" else f"snowflake ({snowflake_block})",
            "snapshots": [o.key for o in outcomes if o.landed],
            "unchanged": [f"{o.competition} {o.endpoint} {o.season} ({o.status})" for o in outcomes if not o.landed],
            "loaded": loaded,
            "dbt": None if dbt_summary is None else f"{len(dbt_summary.nodes)} nodes in {dbt_summary.elapsed_s}s",
            "report": None
            if report is None
            else f"artifact football-standings ({report.competitions} competitions, {report.charts} points charts)",
        }


def _print_summary(summary: dict[str, Any], dashboard_url: str | None) -> None:
    print("\nFootball run complete.")
    for key in summary["snapshots"]:
        print(f"  landed {key}")
    for what in summary["unchanged"]:
        print(f"  unchanged {what}")
    print(f"  loaded {summary['loaded']}")
    print(f"  dbt    {summary['dbt']}")
    print(f"\nLake:      {summary['lake']}")
    print(f"Warehouse: {summary['warehouse']}")
    if summary["target"] == "dev":
        print("Query it, for example:")
        print(
            f"  python -c \"import duckdb; duckdb.connect('{summary['warehouse']}', read_only=True)"
            ".sql('select * from football.fct_football_team_top_scorers order by competition_code, position').show()\""
        )
    print(f"Standings: {summary['report'] or 'not published (dbt did not run)'}")
    if dashboard_url:
        print(f"Dashboard: {dashboard_url}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the football pipeline locally.")
    parser.add_argument("--sample", action="store_true", help="run offline on the deterministic sample")
    parser.add_argument(
        "--sample-matchday",
        type=int,
        metavar="N",
        help="with --sample: the season as it stood after N matchdays (default: all played)",
    )
    parser.add_argument("--competitions", nargs="*", default=["PL"], help="competition codes (default: PL)")
    parser.add_argument("--season", type=int, help="season start year (default: the current season)")
    parser.add_argument("--home", help="INSIGHTFLOW_HOME to use (default: $INSIGHTFLOW_HOME or ./.insightflow)")
    parser.add_argument("--target", choices=["dev", "prod"], default="dev")
    parser.add_argument("--no-dbt", action="store_true", help="land and load only")
    parser.add_argument("--full-check", action="store_true", help="build and run every data test over all rows")
    parser.add_argument("--full-refresh", action="store_true", help="reload the lake and rebuild incremental models")
    args = parser.parse_args(argv)
    run = console.run_flow(
        football,
        competitions=args.competitions,
        season=args.season,
        sample=args.sample,
        sample_matchday=args.sample_matchday,
        home=args.home,
        target=args.target,
        run_dbt_build=not args.no_dbt,
        full_check=args.full_check,
        full_refresh=args.full_refresh,
    )
    return console.exit_status(run, "Football", _print_summary)


if __name__ == "__main__":
    sys.exit(main())
