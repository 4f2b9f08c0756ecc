"""Football: football-data.org standings and top scorers → data lake → warehouse → dbt marts.

For each competition, fetches ``/v4/competitions/{code}/standings`` and ``/scorers`` within the
API's per-minute budget, validates each body against the fields the models use (quarantining bad
ones), lands it as received under ``raw/football/...``, loads new lake files into the warehouse
exactly once and builds the dbt project ``dbt/football`` (history, current standings, top scorers,
team top scorers). Meant to run a few times a day.

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
from prefect.artifacts import create_table_artifact

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tasks import config
from tasks.dbt import run_dbt
from tasks.football_api import (
    DEFAULT_TOKEN_BLOCK, ENDPOINTS, FetchSession, base_url, fetch_endpoint, land_response, parse_raw_key,
    resolve_token,
)
from tasks.football_load import SnowflakeLayout, copy_into_raw, load_raw_duckdb, stage_url
from tasks.football.report import publish_football_report
from tasks.football_sample import SAMPLE_TOKEN, SampleServer
from tasks.lake import open_lake
from tasks.locks import home_lock

COMPETITION_CODE = re.compile(r"^[A-Z0-9]{2,5}$")


def _competition_codes(competitions: list[str] | None) -> list[str]:
    codes = list(dict.fromkeys(c.strip().upper() for c in (competitions or ["PL"])))
    bad = [c for c in codes if not COMPETITION_CODE.match(c)]
    if bad:
        raise ValueError(f"not football-data.org competition codes: {', '.join(bad)} (e.g. PL, BL1, SA, PD, FL1, CL)")
    return codes


def _dbt_args(select: list[str] | None) -> list[str]:
    return ["build", "--select", *select] if select else ["build"]


def _dbt_env_dev(home: str | None) -> dict[str, str]:
    return {"INSIGHTFLOW_WAREHOUSE": str(config.warehouse_path(home))}


def _dbt_env_prod(snowflake_block: str) -> dict[str, str]:
    from prefect_snowflake.database import SnowflakeConnector

    from tasks.football_load import snowflake_dbt_env

    return snowflake_dbt_env(SnowflakeConnector.load(snowflake_block))


def _publish(snapshots: list[dict[str, Any]], dbt_summary: Any) -> None:
    create_table_artifact(snapshots, key="football-snapshots",
                          description="football-data.org responses landed in the raw lake by this run")
    if dbt_summary is not None:
        create_table_artifact(dbt_summary.table(), key="football-dbt",
                              description=f"dbt build of dbt/football on {dbt_summary.target} in {dbt_summary.elapsed_s}s")


@flow(name="football")
def football(
    competitions: list[str] | None = None,
    season: int | None = None,
    target: Literal["dev", "prod"] = "dev",
    sample: bool = False,
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
    lock_timeout_s: float = 900.0,
) -> dict[str, Any]:
    """Fetch football-data.org standings and scorers for each competition, land them raw, load the warehouse and build the football marts."""
    logger = get_run_logger()
    codes = _competition_codes(competitions)
    home_dir = config.insightflow_home(home)
    snapshots: list[dict[str, Any]] = []

    with contextlib.ExitStack() as stack:
        if sample:
            server = stack.enter_context(SampleServer())
            root, token = server.url, SAMPLE_TOKEN
            logger.info("sample mode: serving the deterministic football-data.org sample from %s", root)
        else:
            root, token = base_url(football_base_url), resolve_token(token_block)
        session = FetchSession(root=root, token=token)
        stack.callback(session.close)
        lake = open_lake(lake_target or target, home, lake_block)

        for code in codes:
            for endpoint in ENDPOINTS:
                fetched = fetch_endpoint(session, code, endpoint, season)
                key = land_response(lake, fetched)
                meta = parse_raw_key(key) or {}
                snapshots.append({"competition": code, "endpoint": endpoint, "season": meta.get("season", ""),
                                  "fetched_at": meta.get("fetched_at", ""), "bytes": len(fetched.body), "key": key})
        seasons = sorted({int(s["season"]) for s in snapshots if s["season"].isdigit()})

        dbt_summary = None
        if target == "dev":
            stack.enter_context(home_lock(home_dir, timeout_s=lock_timeout_s, what="football"))
            loaded = load_raw_duckdb(lake, config.warehouse_path(home))
            env = _dbt_env_dev(home)
        else:
            loaded = copy_into_raw(snowflake_block, storage_integration, codes, seasons,
                                   stage=snowflake_stage_url or stage_url(lake), layout=SnowflakeLayout())
            env = _dbt_env_prod(snowflake_block) if run_dbt_build else {}
        if run_dbt_build:
            dbt_summary = run_dbt("football", target, env, args=_dbt_args(dbt_select),
                                  work_dir=home_dir / "dbt" / f"football-{target}")

    _publish(snapshots, dbt_summary)
    report = None if dbt_summary is None else publish_football_report(target, home, snowflake_block)
    return {
        "target": target,
        "lake": lake.uri(),
        "warehouse": str(config.warehouse_path(home)) if target == "dev" else f"snowflake ({snowflake_block})",
        "snapshots": [s["key"] for s in snapshots],
        "loaded": loaded,
        "dbt": None if dbt_summary is None else f"{len(dbt_summary.nodes)} nodes in {dbt_summary.elapsed_s}s",
        "report": None if report is None else f"artifact football-standings ({report.competitions} competitions, "
                                              f"{report.charts} points charts)",
    }


def _print_summary(summary: dict[str, Any]) -> None:
    print("\nFootball run complete.")
    for key in summary["snapshots"]:
        print(f"  landed {key}")
    print(f"  loaded {summary['loaded']}")
    print(f"  dbt    {summary['dbt']}")
    print(f"\nLake:      {summary['lake']}")
    print(f"Warehouse: {summary['warehouse']}")
    if summary["target"] == "dev":
        print("Query it, for example:")
        print(f"  python -c \"import duckdb; duckdb.connect('{summary['warehouse']}', read_only=True)"
              ".sql('select * from football.fct_football_team_top_scorers order by competition_code, position').show()\"")
    print(f"Standings: {summary['report'] or 'not published (dbt did not run)'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the football pipeline locally.")
    parser.add_argument("--sample", action="store_true", help="run offline on the deterministic sample")
    parser.add_argument("--competitions", nargs="*", default=["PL"], help="competition codes (default: PL)")
    parser.add_argument("--season", type=int, help="season start year (default: the current season)")
    parser.add_argument("--home", help="INSIGHTFLOW_HOME to use (default: $INSIGHTFLOW_HOME or ./.insightflow)")
    parser.add_argument("--target", choices=["dev", "prod"], default="dev")
    parser.add_argument("--no-dbt", action="store_true", help="land and load only")
    args = parser.parse_args(argv)
    summary = football(competitions=args.competitions, season=args.season, sample=args.sample, home=args.home,
                       target=args.target, run_dbt_build=not args.no_dbt)
    _print_summary(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
