"""Pipeline latency: the InsightFlow flow on the sample data, with and without Prefect.

    python bench/pipeline_latency.py                 # ~6 min on a quiet 2-core machine
    python bench/pipeline_latency.py --rounds 5      # more side-by-side rounds (medians)

Starts its own ``prefect server start`` on a free loopback port (temporary PREFECT_HOME), then, each
in a fresh process so imports and caches are comparable:
  1. bare: the same work without Prefect (the plain functions, then dbt via ``run_dbt(in_prefect=False)``),
     cold, then unchanged;
  2. side by side, ``--rounds`` times in rotating order, each cold: the flow as shipped (every dbt
     model and test its own task run), the flow with ``dbt_node_tasks=False`` (``--fast-dbt``) and a
     plain ``dbt build`` of ``dbt/insightflow`` on the lake the bare run landed (fresh warehouse and
     target/, no Prefect); medians, and the ratio default / plain dbt;
  3. an unchanged re-run of the default flow;
  4. the floor: a flow calling 141 no-op tasks (one per dbt node) against the same server;
  5. the default flow with the temporary API (no PREFECT_API_URL, empty PREFECT_HOME), as a newcomer
     first runs it (``--no-temporary-api`` skips it).
Before each flow run, the previous run's task runs must all be on the server (its recorder writes
them from events after the flow returns), so one run's backlog does not slow the next; how long
that took is printed. Per-stage times for the flow come from its task runs (read back from the
API); for the bare run they are timed directly. Wall times exclude interpreter start and imports
(shown separately); CPU seconds are the child process's own (user + system, imports included).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    CouldNotMeasure,
    Report,
    prefect_server,
    process_cpu_s,
    run_measured,
    workdir,
)

STAGES = ("fetch", "validate", "land", "catalog", "dbt")
TARGET_COLD_S = 15.0
TARGET_RERUN_S = 5.0
TARGET_OVERHEAD = 0.30
TARGET_DBT_RATIO = 1.5  # default flow / plain dbt build of the same project on the same lake (issue 11)
TARGET_TEMPORARY_API_S = 25.0
NOOP_TASKS = 141  # one per node of dbt/insightflow
NODE_TYPES = {"model", "test", "unit_test", "seed", "snapshot"}
# A loaded machine can take longer than Prefect's default 20 s to start the temporary server; the
# figure is then the slow start, not a crash.
TEMPORARY_API_STARTUP_TIMEOUT_S = "120"


# ------------------------------------------------------------------------------------------- children


def _child_flow(home: str, node_tasks: bool = True) -> dict:
    started = time.perf_counter()
    from flows.insightflow import insightflow

    imported = time.perf_counter()
    state = insightflow(settings={"sample": True, "home": home, "dbt_node_tasks": node_tasks}, return_state=True)
    wall = time.perf_counter() - imported
    if not state.is_completed():
        raise SystemExit(f"flow run ended {state.name}: {state.message}")
    return {"wall_s": wall, "import_s": imported - started, "flow_run_id": str(state.state_details.flow_run_id)}


def _child_flow_temporary_api(home: str) -> dict:
    """The default flow with no API URL: Prefect starts its temporary server, timed apart here.

    The flow then uses that same server (one per process), so the two times add up to a normal run.
    """
    started = time.perf_counter()
    from prefect.server.api.server import SubprocessASGIServer

    from flows.insightflow import insightflow

    imported = time.perf_counter()
    SubprocessASGIServer().start()
    server_up = time.perf_counter()
    state = insightflow(settings={"sample": True, "home": home}, return_state=True)
    wall = time.perf_counter() - imported
    if not state.is_completed():
        raise SystemExit(f"flow run ended {state.name}: {state.message}")
    return {"wall_s": wall, "import_s": imported - started, "server_start_s": server_up - imported}


def _child_dbt_plain(lake_home: str, work: str) -> dict:
    """``dbt build`` of dbt/insightflow on ``lake_home``'s lake into a fresh warehouse, no Prefect at all.

    dbt's own import happens inside the timing, as it does inside the flow's dbt-build task.
    """
    started = time.perf_counter()
    from tasks.core import config
    from tasks.core.dbt.runner import run_dbt

    imported = time.perf_counter()
    env = {
        "INSIGHTFLOW_WAREHOUSE_PATH": str(Path(work) / "warehouse.duckdb"),
        "INSIGHTFLOW_LAKE_DIR": str(config.lake_dir(lake_home)),
    }
    summary = run_dbt("insightflow", "dev", env, args=["build"], work_dir=Path(work) / "dbt", in_prefect=False)
    wall = time.perf_counter() - imported
    return {"wall_s": wall, "import_s": imported - started, "nodes": len(summary.nodes)}


def _child_noop(tasks: int) -> dict:
    """A flow calling ``tasks`` no-op tasks one after another: the least that many task runs cost."""
    started = time.perf_counter()
    from prefect import flow, task

    marks: dict[str, float] = {}

    @task
    def noop(i: int) -> int:
        return i

    @flow(name="noop-floor")
    def floor(n: int) -> None:
        marks["body_start"] = time.perf_counter()
        for i in range(n):
            noop(i)
        marks["body_end"] = time.perf_counter()

    imported = time.perf_counter()
    state = floor(tasks, return_state=True)
    returned = time.perf_counter()
    return {
        "wall_s": returned - imported,
        "import_s": imported - started,
        "before_body_s": marks["body_start"] - imported,
        "body_s": marks["body_end"] - marks["body_start"],
        "after_body_s": returned - marks["body_end"],
        "flow_run_id": str(state.state_details.flow_run_id),
    }


def _child_bare(home: str) -> dict:
    """fetch → validate → land for each dataset, then dbt build, with no Prefect run context."""
    started = time.perf_counter()
    import httpx

    from tasks.core import config
    from tasks.core.dbt.runner import read_state, run_dbt, write_state
    from tasks.core.lake import LocalLake
    from tasks.core.locks import home_lock
    from tasks.insightflow.contracts import DATASETS
    from tasks.insightflow.ingest.fetch import fetch, source_url
    from tasks.insightflow.ingest.land import land, remember_source
    from tasks.insightflow.ingest.validate import conform, read_parquet_bytes
    from tasks.insightflow.sample.server import sample_server
    from tasks.insightflow.warehouse.build import PROJECT, inputs_fingerprint

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
                    table = conform(
                        dataset,
                        fetched.url,
                        read_parquet_bytes(name, fetched.url, fetched.content, fetched.content_type),
                    )
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
            run_dbt(PROJECT, "dev", config.dev_warehouse_env(home), args=["build"], work_dir=work_dir, in_prefect=False)
            write_state(state_path, {"fingerprint": fingerprint})
            dbt_ran = True
        stages["dbt"] = time.perf_counter() - t0
    wall = time.perf_counter() - imported
    return {"wall_s": wall, "import_s": imported - started, "stages": stages, "dbt_ran": dbt_ran}


# ------------------------------------------------------------------------------------------- server reads


def read_task_runs(flow_run_id: str) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    runs: list = []
    with get_client(sync_client=True) as client:
        while True:  # the server caps a page at 200 task runs; a cold run has one per dbt node
            page = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])), limit=200, offset=len(runs)
            )
            runs.extend(page)
            if len(page) < 200:
                return runs


def wait_recorded(flow_run_id: str, at_least: int = 1, timeout_s: float = 180.0) -> tuple[float, int, int]:
    """Wait until the server holds every task run of ``flow_run_id`` (``at_least`` of them), all final.

    Returns (seconds until then, task runs, dbt node task runs). A count unchanged over two reads
    half a second apart, all final, counts as recorded.
    """
    started, previous = time.perf_counter(), -1
    while True:
        runs = read_task_runs(flow_run_id)
        final = len(runs) >= at_least and all(r.state is not None and r.state.is_final() for r in runs)
        if final and len(runs) == previous:
            nodes = sum(1 for r in runs if r.name.split(" ", 1)[0] in NODE_TYPES)
            return max(0.0, time.perf_counter() - started - 0.5), len(runs), nodes
        if time.perf_counter() - started > timeout_s:
            raise CouldNotMeasure(f"flow run {flow_run_id}: task runs not all recorded after {timeout_s:.0f}s")
        previous = len(runs) if final else -1
        time.sleep(0.5)


def _stage_of(task_name: str) -> str | None:
    for prefix, stage in (
        ("fetch-", "fetch"),
        ("validate-", "validate"),
        ("land-", "land"),
        ("catalog", "catalog"),
        ("dbt-build", "dbt"),
    ):
        if task_name.startswith(prefix):
            return stage
    return None


def flow_stage_times(flow_run_id: str) -> tuple[dict[str, float], dict[str, float], int]:
    """Per stage: (span from first start to last end, sum of task run times), and the task-run count.

    Stages run their datasets concurrently, so the span is the stage's share of the wall time.
    """
    runs = read_task_runs(flow_run_id)
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
    elif args.child == "dbt-plain":
        result = _child_dbt_plain(args.home, args.work)
    elif args.child == "noop":
        result = _child_noop(NOOP_TASKS)
    elif args.child == "flow-temporary-api":
        result = _child_flow_temporary_api(args.home)
    else:
        result = _child_flow(args.home, node_tasks=args.child == "flow")
    print(json.dumps(result))
    return 0


def _measure_run(argv: list[str], env: dict[str, str], server_pid: int, at_least: int = 1) -> dict:
    """One child run; for a flow run, also wait until the server has recorded it and add the server's CPU."""
    load, server_cpu = os.getloadavg()[0], process_cpu_s(server_pid)
    result = run_measured(argv, env=env)
    result["load"] = load
    if "flow_run_id" in result:
        result["recorded_after_s"], result["task_runs"], result["node_runs"] = wait_recorded(
            result["flow_run_id"], at_least
        )
    result["server_cpu_s"] = process_cpu_s(server_pid) - server_cpu
    return result


def _side_by_side(
    me: list[str], wd: Path, env: dict[str, str], server_pid: int, lake_home: Path, rounds: int
) -> dict[str, list[dict]]:
    """``rounds`` cold runs of each kind, the order rotating each round so drifting load hits all three."""
    kinds = ["flow", "flow-fast", "dbt-plain"]
    runs: dict[str, list[dict]] = {k: [] for k in kinds}
    for r in range(rounds):
        order = kinds[r % 3 :] + kinds[: r % 3]
        for kind in order:
            home = wd / f"home-{kind}-{r}"
            argv = [*me, "--child", kind, "--home", str(lake_home if kind == "dbt-plain" else home)]
            if kind == "dbt-plain":
                argv += ["--work", str(home)]
            runs[kind].append(_measure_run(argv, env, server_pid))
        print(
            "  round {}: {}".format(
                r + 1,
                ", ".join(
                    f"{k} {runs[k][-1]['wall_s']:.1f} s (cpu {runs[k][-1]['cpu_s']:.1f} s + server "
                    f"{runs[k][-1]['server_cpu_s']:.1f} s, load {runs[k][-1]['load']:.1f})"
                    for k in order
                ),
            ),
            flush=True,
        )
    return runs


def _median(results: list[dict], key: str = "wall_s") -> float:
    return statistics.median(r[key] for r in results)


def _walls(results: list[dict]) -> str:
    return ", ".join(f"{r['wall_s']:.1f}" for r in results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--child",
        choices=["flow", "flow-fast", "bare", "dbt-plain", "noop", "flow-temporary-api"],
        help=argparse.SUPPRESS,
    )
    parser.add_argument("--home", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=3, help="side-by-side rounds of default / fast / plain dbt")
    parser.add_argument("--no-temporary-api", action="store_true", help="skip the run with the temporary API")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (server log, homes)")
    args = parser.parse_args(argv)
    if args.child:
        return _child(args)

    report = Report("pipeline latency")
    me = [sys.executable, str(Path(__file__).resolve())]
    try:
        with workdir("insightflow-bench-latency-", keep=args.keep) as wd:
            print(f"load average before: {os.getloadavg()[0]:.2f} (2 cores; figures are wall times)", flush=True)
            bare_home = wd / "home-bare"
            with prefect_server(wd) as env:
                run_env = {**os.environ, **env}
                bare = run_measured([*me, "--child", "bare", "--home", str(bare_home)], env=run_env)
                bare_rerun = run_measured([*me, "--child", "bare", "--home", str(bare_home)], env=run_env)
                side = _side_by_side(me, wd, run_env, env.pid, bare_home, args.rounds)
                cold = side["flow"][-1]
                rerun = _measure_run(
                    [*me, "--child", "flow", "--home", str(wd / f"home-flow-{args.rounds - 1}")], run_env, env.pid
                )
                noop = _measure_run([*me, "--child", "noop"], run_env, env.pid)
                cold_span, cold_sum, _ = flow_stage_times(cold["flow_run_id"])
                rerun_span, _, rerun_tasks = flow_stage_times(rerun["flow_run_id"])
            temporary = None
            if not args.no_temporary_api:
                temp_env = {k: v for k, v in run_env.items() if k != "PREFECT_API_URL"} | {
                    "PREFECT_HOME": str(wd / "prefect-home-temporary"),
                    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": TEMPORARY_API_STARTUP_TIMEOUT_S,
                }
                temp_env.pop("PREFECT_SERVER_DATABASE_CONNECTION_URL", None)
                temporary = run_measured(
                    [*me, "--child", "flow-temporary-api", "--home", str(wd / "home-temporary")], env=temp_env
                )

            default_s, fast_s, plain_s = (_median(side[k]) for k in ("flow", "flow-fast", "dbt-plain"))
            # Each round's runs are minutes apart at most, so the ratio is taken per round (paired)
            # and the median of those is the figure; the machine's load drifts more between rounds.
            per_round = [d["wall_s"] / p["wall_s"] for d, p in zip(side["flow"], side["dbt-plain"], strict=True)]
            ratio = statistics.median(per_round)
            rounds = f"median of {args.rounds}"
            report.figure(
                "cold run, default (each dbt model and test its own task run)",
                default_s,
                "s",
                f"<= {TARGET_COLD_S:g} s",
                default_s <= TARGET_COLD_S,
                note=f"{rounds}: {_walls(side['flow'])}; "
                f"{cold['task_runs']} task runs of which {cold['node_runs']} dbt nodes; "
                f"cpu {_median(side['flow'], 'cpu_s'):.1f} s; whole process, interpreter start and "
                f"imports included, {_median(side['flow'], 'process_wall_s'):.1f} s",
            )
            report.figure(
                "cold run, --fast-dbt (dbt_node_tasks=False)",
                fast_s,
                "s",
                f"<= {TARGET_COLD_S:g} s",
                fast_s <= TARGET_COLD_S,
                note=f"{rounds}: {_walls(side['flow-fast'])}; cpu {_median(side['flow-fast'], 'cpu_s'):.1f} s",
            )
            report.figure(
                "plain dbt build (same project, same lake, no Prefect)",
                plain_s,
                "s",
                note=f"{rounds}: {_walls(side['dbt-plain'])}; "
                f"cpu {_median(side['dbt-plain'], 'cpu_s'):.1f} s; "
                f"{side['dbt-plain'][0]['nodes']} nodes",
            )
            report.figure(
                "ratio default / plain dbt (median of per-round ratios)",
                ratio,
                "x",
                f"<= {TARGET_DBT_RATIO:g}x",
                ratio <= TARGET_DBT_RATIO,
                note="per round: "
                + ", ".join(f"{r:.2f}" for r in per_round)
                + f"; ratio of the medians {default_s / plain_s:.2f}",
            )
            report.figure(
                "ratio --fast-dbt / plain dbt (median of per-round ratios)",
                statistics.median(
                    f["wall_s"] / p["wall_s"] for f, p in zip(side["flow-fast"], side["dbt-plain"], strict=True)
                ),
                "x",
            )
            report.figure(
                "server caught up after a default run",
                _median(side["flow"], "recorded_after_s"),
                "s",
                note="from the flow call returning until all its task runs were recorded",
            )
            cpu = {k: _median(side[k], "cpu_s") + _median(side[k], "server_cpu_s") for k in side}
            report.figure(
                "CPU seconds, default / --fast-dbt / plain dbt (process + Prefect server)",
                f"{cpu['flow']:.1f} / {cpu['flow-fast']:.1f} / {cpu['dbt-plain']:.1f}",
                "s",
                note=f"ratio default / plain {cpu['flow'] / cpu['dbt-plain']:.2f}x; server share of "
                f"default {_median(side['flow'], 'server_cpu_s'):.1f} s; imports included",
            )
            report.figure(
                "unchanged re-run with Prefect",
                rerun["wall_s"],
                "s",
                f"<= {TARGET_RERUN_S:g} s",
                rerun["wall_s"] <= TARGET_RERUN_S,
                note=f"{rerun_tasks} task runs",
            )
            report.figure(
                "cold run without Prefect (bare)", bare["wall_s"], "s", note=f"+{bare['import_s']:.1f} s imports"
            )
            report.figure("unchanged re-run without Prefect (bare)", bare_rerun["wall_s"], "s")
            overhead = (default_s - bare["wall_s"]) / bare["wall_s"]
            report.figure(
                "Prefect overhead on a cold run (default vs bare)",
                100 * overhead,
                "% of bare",
                f"<= {100 * TARGET_OVERHEAD:g} %",
                overhead <= TARGET_OVERHEAD,
            )
            report.figure(
                f"floor: a flow of {NOOP_TASKS} no-op tasks",
                noop["wall_s"],
                "s",
                note=f"{noop['before_body_s']:.2f} s to the flow body, {noop['body_s']:.2f} s in it, "
                f"{noop['after_body_s']:.2f} s after it; server caught up "
                f"{noop['recorded_after_s']:.1f} s later; cpu {noop['cpu_s']:.1f} s + server "
                f"{noop['server_cpu_s']:.1f} s",
            )
            if temporary is not None:
                report.figure(
                    "cold run, default, temporary API (no PREFECT_API_URL, empty PREFECT_HOME)",
                    temporary["wall_s"],
                    "s",
                    f"<= {TARGET_TEMPORARY_API_S:g} s",
                    temporary["wall_s"] <= TARGET_TEMPORARY_API_S,
                    note=f"{temporary['server_start_s']:.1f} s of it starting the temporary server "
                    f"(a new database: migrations), then the flow; cpu {temporary['cpu_s']:.1f} s "
                    "with the server's",
                )
            for stage in STAGES:
                if stage == "catalog":
                    report.figure("stage catalog", "n/a", note="Glue catalog runs only with target=prod")
                    continue
                report.figure(
                    f"stage {stage} (cold, Prefect)",
                    cold_span[stage],
                    "s",
                    note=f"sum over task runs {cold_sum[stage]:.2f} s; bare {bare['stages'][stage]:.2f} s",
                )
            for stage in ("fetch", "validate", "land", "dbt"):
                report.figure(
                    f"stage {stage} (re-run, Prefect)",
                    rerun_span[stage],
                    "s",
                    note=f"bare re-run {bare_rerun['stages'][stage]:.2f} s",
                )
            report.figure(
                "peak RSS cold run with Prefect",
                cold["peak_rss_mib"],
                "MiB",
                note=f"bare {bare['peak_rss_mib']:.0f} MiB",
            )
            print(f"load average after: {os.getloadavg()[0]:.2f}", flush=True)
    except CouldNotMeasure as exc:
        print(f"could not measure: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
