"""Pipeline latency: the InsightFlow flow on the sample data, with and without Prefect.

    python bench/pipeline_latency.py

Starts its own ``prefect server start`` on a free loopback port (temporary PREFECT_HOME), then, each
in a fresh process so imports and caches are comparable:
  1. cold: the flow with ``sample=True`` on an empty INSIGHTFLOW_HOME;
  2. unchanged re-run: the same flow on the same home (every source answers 304, dbt is skipped);
  3. bare: the same work without Prefect (the plain functions, then dbt via ``run_dbt(in_prefect=False)``).
Per-stage times for the flow come from its task runs (read back from the API); for the bare run
they are timed directly. Wall times exclude interpreter start and imports (shown separately).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import CouldNotMeasure, Report, prefect_server, run_measured, workdir  # noqa: E402

STAGES = ("fetch", "validate", "land", "catalog", "dbt")
TARGET_COLD_S = 15.0
TARGET_RERUN_S = 5.0
TARGET_OVERHEAD = 0.30


# ------------------------------------------------------------------------------------------- children


def _child_flow(home: str, dbt_plain: bool = False) -> dict:
    started = time.perf_counter()
    from flows.insightflow import insightflow

    if dbt_plain:
        # What-if: the dbt-build task invokes dbt once, plainly, instead of through prefect-dbt's
        # runner (which creates a task run per model and test).
        import functools

        import tasks.insightflow.warehouse

        tasks.insightflow.warehouse.run_dbt = functools.partial(tasks.insightflow.warehouse.run_dbt, in_prefect=False)
    imported = time.perf_counter()
    state = insightflow(sample=True, home=home, return_state=True)
    wall = time.perf_counter() - imported
    if not state.is_completed():
        raise SystemExit(f"flow run ended {state.name}: {state.message}")
    return {"wall_s": wall, "import_s": imported - started, "flow_run_id": str(state.state_details.flow_run_id)}


def _child_bare(home: str) -> dict:
    """fetch → validate → land for each dataset, then dbt build, with no Prefect run context."""
    started = time.perf_counter()
    import httpx

    from flows.insightflow import _dev_warehouse_env
    from tasks.core import config
    from tasks.core.dbt import read_state, run_dbt, write_state
    from tasks.core.lake import LocalLake
    from tasks.core.locks import home_lock
    from tasks.insightflow.contracts import DATASETS
    from tasks.insightflow.fetch import fetch, source_url
    from tasks.insightflow.land import land, remember_source
    from tasks.insightflow.sample import sample_server
    from tasks.insightflow.validate import conform, read_parquet_bytes
    from tasks.insightflow.warehouse import PROJECT, inputs_fingerprint

    imported = time.perf_counter()
    stages = dict.fromkeys(STAGES, 0.0)
    home_dir = config.insightflow_home(home)
    with sample_server().running() as server, home_lock(home_dir, what="bench"):
        lake = LocalLake(config.lake_dir(home))
        lake.sweep_temporary("raw")
        with httpx.Client(follow_redirects=True, headers={"User-Agent": "insightflow/0.1"}) as client:
            for name, dataset in DATASETS.items():
                t0 = time.perf_counter()
                fetched = fetch(client, lake, dataset, source_url(dataset, server.url(), server.url()))
                t1 = time.perf_counter()
                table = None
                if not fetched.unchanged:
                    table = conform(dataset, fetched.url, read_parquet_bytes(name, fetched.url, fetched.content,
                                                                             fetched.content_type))
                t2 = time.perf_counter()
                if table is not None:
                    land(lake, dataset, table, fetched)
                elif fetched.status == "same_content":
                    remember_source(lake, fetched)
                t3 = time.perf_counter()
                stages["fetch"] += t1 - t0
                stages["validate"] += t2 - t1
                stages["land"] += t3 - t2
        t0 = time.perf_counter()
        work_dir = home_dir / "dbt" / "insightflow-dev"
        state_path = work_dir / "last-build.json"
        fingerprint = inputs_fingerprint(lake, list(DATASETS))
        dbt_ran = False
        if read_state(state_path).get("fingerprint") != fingerprint or not config.warehouse_path(home).exists():
            run_dbt(PROJECT, "dev", _dev_warehouse_env(home), args=["build"], work_dir=work_dir, in_prefect=False)
            write_state(state_path, {"fingerprint": fingerprint})
            dbt_ran = True
        stages["dbt"] = time.perf_counter() - t0
    wall = time.perf_counter() - imported
    return {"wall_s": wall, "import_s": imported - started, "stages": stages, "dbt_ran": dbt_ran}


def _stage_of(task_name: str) -> str | None:
    for prefix, stage in (("fetch-", "fetch"), ("validate-", "validate"), ("land-", "land"),
                          ("catalog", "catalog"), ("dbt-build", "dbt")):
        if task_name.startswith(prefix):
            return stage
    return None


def flow_stage_times(flow_run_id: str) -> tuple[dict[str, float], dict[str, float], int]:
    """Per stage: (span from first start to last end, sum of task run times), and the task-run count.

    Stages run their datasets concurrently, so the span is the stage's share of the wall time.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    runs = []
    with get_client(sync_client=True) as client:
        while True:  # the server caps a page at 200 task runs; a cold run has one per dbt node
            page = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
                                         limit=200, offset=len(runs))
            runs.extend(page)
            if len(page) < 200:
                break
    spans: dict[str, list] = {}
    sums = dict.fromkeys(STAGES, 0.0)
    for run in runs:
        stage = _stage_of(run.name)
        if stage is None or run.start_time is None or run.end_time is None:
            continue
        lo, hi = spans.get(stage, [run.start_time, run.end_time])
        spans[stage] = [min(lo, run.start_time), max(hi, run.end_time)]
        sums[stage] += (run.end_time - run.start_time).total_seconds()
    span_s = dict.fromkeys(STAGES, 0.0) | {s: (hi - lo).total_seconds() for s, (lo, hi) in spans.items()}
    return span_s, sums, len(runs)


# ------------------------------------------------------------------------------------------- driver


def _child(args: argparse.Namespace) -> int:
    if args.child == "bare":
        result = _child_bare(args.home)
    else:
        result = _child_flow(args.home, dbt_plain=args.child == "flow-dbt-plain")
    print(json.dumps(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", choices=["flow", "flow-dbt-plain", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (server log, homes)")
    args = parser.parse_args(argv)
    if args.child:
        return _child(args)

    report = Report("pipeline latency")
    me = [sys.executable, str(Path(__file__).resolve())]
    try:
        with workdir("insightflow-bench-latency-", keep=args.keep) as wd:
            print(f"load average before: {os.getloadavg()[0]:.2f} (2 cores; figures are wall times)", flush=True)
            bare_home, flow_home = wd / "home-bare", wd / "home-flow"
            with prefect_server(wd) as env:
                run_env = {**os.environ, **env}
                bare = run_measured([*me, "--child", "bare", "--home", str(bare_home)], env=run_env)
                bare_rerun = run_measured([*me, "--child", "bare", "--home", str(bare_home)], env=run_env)
                cold = run_measured([*me, "--child", "flow", "--home", str(flow_home)], env=run_env)
                rerun = run_measured([*me, "--child", "flow", "--home", str(flow_home)], env=run_env)
                plain = run_measured([*me, "--child", "flow-dbt-plain", "--home", str(wd / "home-plain")], env=run_env)
                cold_span, cold_sum, cold_tasks = flow_stage_times(cold["flow_run_id"])
                rerun_span, _, rerun_tasks = flow_stage_times(rerun["flow_run_id"])

            report.figure("cold run with Prefect", cold["wall_s"], "s", f"<= {TARGET_COLD_S:g} s",
                          cold["wall_s"] <= TARGET_COLD_S, note=f"{cold_tasks} task runs; +{cold['import_s']:.1f} s imports")
            report.figure("unchanged re-run with Prefect", rerun["wall_s"], "s", f"<= {TARGET_RERUN_S:g} s",
                          rerun["wall_s"] <= TARGET_RERUN_S, note=f"{rerun_tasks} task runs")
            report.figure("cold run without Prefect (bare)", bare["wall_s"], "s",
                          note=f"+{bare['import_s']:.1f} s imports")
            report.figure("unchanged re-run without Prefect (bare)", bare_rerun["wall_s"], "s")
            overhead = (cold["wall_s"] - bare["wall_s"]) / bare["wall_s"]
            report.figure("Prefect overhead on a cold run", 100 * overhead, "% of bare", f"<= {100 * TARGET_OVERHEAD:g} %",
                          overhead <= TARGET_OVERHEAD)
            report.figure("what-if: cold run with Prefect, dbt invoked plainly inside dbt-build", plain["wall_s"], "s",
                          f"<= {TARGET_COLD_S:g} s", plain["wall_s"] <= TARGET_COLD_S,
                          note=f"overhead {100 * (plain['wall_s'] - bare['wall_s']) / bare['wall_s']:.0f}% of bare; "
                               "tasks/warehouse.py run_dbt(..., in_prefect=False)")
            for stage in STAGES:
                if stage == "catalog":
                    report.figure("stage catalog", "n/a", note="Glue catalog runs only with target=prod")
                    continue
                report.figure(f"stage {stage} (cold, Prefect)", cold_span[stage], "s",
                              note=f"sum over task runs {cold_sum[stage]:.2f} s; bare {bare['stages'][stage]:.2f} s")
            for stage in ("fetch", "validate", "land", "dbt"):
                report.figure(f"stage {stage} (re-run, Prefect)", rerun_span[stage], "s",
                              note=f"bare re-run {bare_rerun['stages'][stage]:.2f} s")
            report.figure("peak RSS cold run with Prefect", cold["peak_rss_mib"], "MiB",
                          note=f"bare {bare['peak_rss_mib']:.0f} MiB")
            print(f"load average after: {os.getloadavg()[0]:.2f}", flush=True)
    except CouldNotMeasure as exc:
        print(f"could not measure: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
