"""Football season: a season of 5-minute ticks against the sample server, 38 matchdays of changes.

    python bench/football_season.py [--ticks 2000] [--flow-changed 2] [--keep]

One ``SampleServer`` (20-team Premier League, conditional requests answered) serves the whole
season; matchday m is played just before tick round(m * ticks / 39), so 39 ticks (tick 0: nothing
played yet) see a new table and every other tick sees the same one. The ticks run back to back,
not 5 minutes apart: what is measured is the work a tick does, not the wait between ticks.

Each tick is the flow's own sequence of steps:
- most ticks call the plain functions behind the flow's tasks (read manifest, conditional fetch,
  record, plan_sync, and only if the plan is not idle: DuckDB load by key, plain dbt build,
  mark_synced), so 2,000 ticks take minutes instead of the ~2 s of Prefect bookkeeping each
  flow run costs;
- the first ``--flow-changed`` changed ticks after the first build and the last ones of the season,
  each followed by one unchanged tick, run the real ``football`` flow against a throwaway Prefect
  server (prefect-dbt runner: a task per dbt node), to time a tick as production runs it.
Figures: snapshot files landed, history rows and distinct snapshots, dbt runs, dbt nodes run on
unchanged ticks, wall times of unchanged and changed ticks at the start and the end of the season;
the benchmark also checks that "the table at time T" returns the sample's table for each matchday.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import CouldNotMeasure, Report, prefect_server, workdir

MATCHDAYS = 38
CODE = "PL"
TARGET_RATIO = 1.2
TABLE_AT = """
    select history.position, history.team_id, history.points
    from football.fct_football_standings_history as history
    inner join football.fct_football_snapshots as snapshots on history.snapshot_id = snapshots.snapshot_id
    where snapshots.endpoint = 'standings' and snapshots.competition_code = ? and history.table_type = 'TOTAL'
        and snapshots.valid_from <= ? and (snapshots.valid_to is null or ? < snapshots.valid_to)
    order by history.position
"""


@dataclass
class Season:
    """What the ticks did, tick by tick."""

    unchanged_s: list[float] = field(default_factory=list)
    changed_s: dict[int, float] = field(default_factory=dict)  # matchday -> plain changed tick wall time
    changed_exec_s: dict[int, float] = field(default_factory=dict)  # matchday -> sum of dbt node execution times
    flow_changed_s: dict[int, float] = field(default_factory=dict)
    flow_unchanged_s: dict[int, float] = field(default_factory=dict)
    landed: int = 0
    dbt_runs: int = 0
    dbt_nodes_unchanged: int = 0
    changed_nodes: int = 0
    played_at: dict[int, datetime] = field(default_factory=dict)  # matchday -> when its table was first landed


def _plain_tick(server, session, lake, home: Path, dbt_project: str) -> tuple[int, list[dict] | None]:
    """One tick with the plain functions the flow's tasks call; returns (files landed, dbt nodes run or None)."""
    from tasks.core import config
    from tasks.core.dbt.runner import run_dbt
    from tasks.football.api import ENDPOINTS, endpoint_url, fetch
    from tasks.football.load import load_duckdb
    from tasks.football.snapshots import mark_synced, plan_sync, read_manifest, record, validators_for

    outcomes = []
    for endpoint in ENDPOINTS:
        manifest = read_manifest(lake, CODE, endpoint)
        validators = validators_for(manifest, endpoint_url(server.url, CODE, endpoint, None))
        fetched = fetch(
            session.client, session.root, session.token, CODE, endpoint, None, session.pacer, session.policy, validators
        )
        outcomes.append(record(lake, fetched, manifest))
    warehouse = config.warehouse_path(home)
    missing = not warehouse.exists()
    plan = plan_sync(lake, outcomes, "dev", dbt_project, rescan=missing, build=missing)
    landed = sum(o.landed for o in outcomes)
    if plan.idle:
        return landed, None
    load_duckdb(lake, warehouse, None if plan.rescan else plan.keys, plan.snapshots)
    summary = run_dbt(
        "football",
        "dev",
        {"INSIGHTFLOW_WAREHOUSE_PATH": str(warehouse)},
        args=["build"],
        work_dir=home / "dbt" / "football-dev",
        in_prefect=False,
    )
    mark_synced(lake, plan, dbt_project)
    return landed, summary.nodes


def _flow_tick(server, home: Path) -> tuple[float, dict]:
    from flows.football import football

    started = time.perf_counter()
    state = football(
        competitions=[CODE],
        settings={"football_base_url": server.url, "token_block": "", "home": str(home)},
        return_state=True,
    )
    wall = time.perf_counter() - started
    if not state.is_completed():
        raise CouldNotMeasure(f"football flow run ended {state.name}: {state.message}")
    return wall, state.result()


def _change_ticks(ticks: int) -> dict[int, int]:
    """tick -> matchday played just before it."""
    return {round(m * ticks / (MATCHDAYS + 1)): m for m in range(1, MATCHDAYS + 1)}


def run_season(ticks: int, flow_changed: int, home: Path, report: Report) -> Season:
    from tasks.core import config
    from tasks.core.dbt.runner import project_dir, project_fingerprint
    from tasks.core.http import RetryPolicy
    from tasks.core.lake import LocalLake
    from tasks.football.api import FetchSession
    from tasks.football.sample.data import SAMPLE_TOKEN
    from tasks.football.sample.server import SampleServer

    season = Season()
    changes = _change_ticks(ticks)
    flow_days = set(range(2, 2 + flow_changed)) | set(range(MATCHDAYS - flow_changed + 1, MATCHDAYS + 1))
    flow_after: set[int] = set()  # ticks that follow a flow-run change: timed as unchanged flow ticks
    lake = LocalLake(config.lake_dir(home))
    dbt_project = project_fingerprint(project_dir("football"))
    os.environ["FOOTBALL_DATA_TOKEN"] = SAMPLE_TOKEN
    with SampleServer(per_minute=10**6) as server:
        server.play(0, CODE)
        session = FetchSession(root=server.url, token=SAMPLE_TOKEN, policy=RetryPolicy(attempts=3, timeout_s=10))
        for tick in range(ticks):
            matchday = changes.get(tick)
            if matchday is not None:
                server.play(matchday, CODE)
            if matchday in flow_days or tick in flow_after:
                wall, result = _flow_tick(server, home)
                landed = len(result["snapshots"])
                nodes = None if result["dbt"] is None else [{}] * int(result["dbt"].split()[0])
                if matchday is not None:
                    season.flow_changed_s[matchday] = wall
                    flow_after.add(tick + 1)
                else:
                    season.flow_unchanged_s[tick] = wall
            else:
                started = time.perf_counter()
                landed, nodes = _plain_tick(server, session, lake, home, dbt_project)
                wall = time.perf_counter() - started
                if matchday is not None or tick == 0:
                    season.changed_s[matchday or 0] = wall
                    season.changed_exec_s[matchday or 0] = sum(n["seconds"] for n in nodes or [])
                else:
                    season.unchanged_s.append(wall)
            season.landed += landed
            if nodes is not None:
                season.dbt_runs += 1
                season.changed_nodes = len(nodes)
                if landed == 0:
                    season.dbt_nodes_unchanged += len(nodes)
            if landed:
                season.played_at[matchday or 0] = datetime.now(UTC).replace(tzinfo=None)
            elif matchday is not None:
                raise CouldNotMeasure(f"tick {tick}: matchday {matchday} was played but nothing landed")
            if tick % 250 == 0:
                report.info(f"tick {tick}/{ticks}: {season.landed} files landed, {season.dbt_runs} dbt runs")
        session.close()
    return season


def check_history(home: Path, season: Season) -> tuple[int, int]:
    """(history rows, distinct snapshots); raises if "the table at time T" is not the sample's table."""
    import duckdb

    from tasks.core import config
    from tasks.football.sample.data import standings

    with duckdb.connect(str(config.warehouse_path(home)), read_only=True) as con:
        rows, snapshots = con.execute(
            "select count(*), count(distinct snapshot_id) from football.fct_football_standings_history"
        ).fetchone()
        for matchday, at in sorted(season.played_at.items()):
            got = con.execute(TABLE_AT, [CODE, at, at]).fetchall()
            table = next(t for t in standings(CODE, played=matchday)["standings"] if t["type"] == "TOTAL")["table"]
            if got != [(r["position"], r["team"]["id"], r["points"]) for r in table]:
                raise CouldNotMeasure(f"the table at {at} is not the sample's table after matchday {matchday}")
    return rows, snapshots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ticks", type=int, default=2000)
    parser.add_argument(
        "--flow-changed", type=int, default=2, help="changed ticks at each end of the season run as real flow runs"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    report = Report("football season")
    started = time.perf_counter()
    try:
        with workdir("insightflow-bench-football-", keep=args.keep) as wd:
            print(f"load average before: {os.getloadavg()[0]:.2f} (2 cores; figures are wall times)", flush=True)
            with prefect_server(wd):
                season = run_season(args.ticks, args.flow_changed, wd / "home", report)
            rows, snapshots = check_history(wd / "home", season)
            files = len([p for p in (wd / "home/lake/raw/football").rglob("*Z.json")])
            changed = 1 + MATCHDAYS
            report.figure("ticks", args.ticks, note=f"{changed} with a new table, {args.ticks - changed} unchanged")
            report.figure(
                "snapshot files landed",
                files,
                "files",
                f"= 2 x {changed} changed ticks",
                files == season.landed == 2 * changed,
                note=f"before this change: {2 * args.ticks}",
            )
            report.figure(
                "history rows",
                rows,
                "rows",
                f"= {snapshots} snapshots x 60 (20 teams x 3 tables)",
                rows == 60 * snapshots and snapshots == changed,
                note=f"{snapshots} distinct snapshots; per tick it would be {60 * args.ticks:,}",
            )
            report.figure("dbt runs", season.dbt_runs, note=f"{season.changed_nodes} nodes each")
            report.figure(
                "dbt nodes run on unchanged ticks",
                season.dbt_nodes_unchanged,
                "nodes",
                "= 0",
                season.dbt_nodes_unchanged == 0,
            )
            unchanged = statistics.median(season.unchanged_s)
            report.figure(
                "unchanged tick, plain functions (median)",
                1000 * unchanged,
                "ms",
                note=f"{len(season.unchanged_s)} ticks, p95 "
                f"{1000 * sorted(season.unchanged_s)[int(0.95 * len(season.unchanged_s))]:.1f} ms; "
                "2 conditional GETs (304), 2 manifest writes",
            )
            if season.flow_unchanged_s:
                report.figure(
                    "unchanged tick, flow run (median)",
                    statistics.median(season.flow_unchanged_s.values()),
                    "s",
                    note=f"{len(season.flow_unchanged_s)} runs; Prefect bookkeeping, no dbt",
                )
            plain_days = sorted(d for d in season.changed_s if d > 1)
            early, late = plain_days[:3], plain_days[-3:]
            start_s = statistics.median(season.changed_s[d] for d in early)
            end_s = statistics.median(season.changed_s[d] for d in late)
            report.figure(
                "changed tick, plain functions, season start (median)",
                start_s,
                "s",
                note=f"matchdays {early}; load + plain dbt build",
            )
            report.figure(
                "changed tick, plain functions, season end (median)",
                end_s,
                "s",
                f"<= {TARGET_RATIO}x start",
                end_s <= TARGET_RATIO * start_s,
                note=f"matchdays {late}; {end_s / start_s:.2f}x start",
            )
            exec_start = statistics.median(season.changed_exec_s[d] for d in early)
            exec_end = statistics.median(season.changed_exec_s[d] for d in late)
            report.figure(
                "dbt node execution per changed tick, season start (median)",
                exec_start,
                "s",
                note="sum of dbt's own per-node times: the warehouse work, without dbt start-up and parsing",
            )
            report.figure(
                "dbt node execution per changed tick, season end (median)",
                exec_end,
                "s",
                f"<= {TARGET_RATIO}x start",
                exec_end <= TARGET_RATIO * exec_start,
                note=f"{exec_end / exec_start:.2f}x start",
            )
            if season.flow_changed_s:
                flow_days = sorted(season.flow_changed_s)
                half = len(flow_days) // 2
                flow_start = statistics.median(season.flow_changed_s[d] for d in flow_days[:half])
                flow_end = statistics.median(season.flow_changed_s[d] for d in flow_days[half:])
                report.figure(
                    "changed tick, flow run, season start (median)",
                    flow_start,
                    "s",
                    note=f"matchdays {flow_days[:half]}; prefect-dbt runner",
                )
                report.figure(
                    "changed tick, flow run, season end (median)",
                    flow_end,
                    "s",
                    f"<= {TARGET_RATIO}x start",
                    flow_end <= TARGET_RATIO * flow_start,
                    note=f"matchdays {flow_days[half:]}; {flow_end / flow_start:.2f}x start",
                )
            report.figure("first tick (tables created, full build)", season.changed_s[0], "s")
            report.figure("benchmark wall time", time.perf_counter() - started, "s")
            print(f"load average after: {os.getloadavg()[0]:.2f}", flush=True)
    except CouldNotMeasure as exc:
        print(f"could not measure: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
