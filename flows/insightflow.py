"""InsightFlow: Malaysian open data → data lake → warehouse → dbt star schema, daily at 05:00 UTC.

Fetches DOSM's wholesale & retail trade indices (headline ``iowrt`` and by MSIC group ``iowrt_3d``),
data.gov.my's weekly fuel prices and the MSIC dictionary; validates each against its contract; lands
Hive-partitioned Parquet in the lake; builds and tests the dbt project ``dbt/insightflow``.

Locally (the default, ``target=dev``) the lake is ``$INSIGHTFLOW_HOME/lake`` and the warehouse
DuckDB at ``$INSIGHTFLOW_HOME/warehouse.duckdb``::

    python flows/insightflow.py            # live sources
    python flows/insightflow.py --sample   # offline, deterministic sample through the same path

``target=prod`` lands in S3 (an ``S3Bucket`` block), catalogues in Glue and runs dbt on Athena.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

from prefect import flow, get_run_logger, unmapped
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.futures import wait

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tasks.core import config, console, orchestration
from tasks.core.lake import LocalLake, open_lake
from tasks.core.locks import home_lock
from tasks.insightflow import lineage
from tasks.insightflow.catalog.update import update_catalog
from tasks.insightflow.contracts import DATASETS
from tasks.insightflow.freshness import check_freshness
from tasks.insightflow.ingest.fetch import fetch_dataset, source_url
from tasks.insightflow.ingest.land import LandResult, land_dataset
from tasks.insightflow.ingest.validate import validate_dataset
from tasks.insightflow.report.publish import publish_insightflow_report
from tasks.insightflow.sample.data import SAMPLE_AS_OF
from tasks.insightflow.sample.server import FAULTS, sample_server_for_run
from tasks.insightflow.warehouse.athena import ATHENA_QUERY_HINT, load_dbt_prod_env
from tasks.insightflow.warehouse.build import build_warehouse, check_source_freshness


class IngestFailed(RuntimeError):
    """One or more datasets did not land; the message lists each with its cause.

    ``causes`` holds each dataset's own exception (where one was raised), so that the flow's retry
    policy (tasks/core/orchestration.py) can tell a fault that may clear from one that cannot.
    """

    def __init__(self, message: str, causes: list[BaseException] | None = None):
        super().__init__(message)
        self.causes = list(causes or [])


def _failure(futures) -> tuple[str, BaseException | None]:
    """The first failed stage's message and exception for one dataset's chain of futures."""
    for future in futures:
        state = future.state
        if state.is_failed() or state.is_crashed():
            try:
                future.result(raise_on_failure=True)
            except Exception as exc:  # the task's own exception carries dataset, URL and cause
                if "upstream" not in str(exc).lower():
                    return str(exc), exc
            return state.message or state.name, None
    return "did not complete", None


def _dev_warehouse_env(home: str | None) -> dict[str, str]:
    return {
        "INSIGHTFLOW_WAREHOUSE_PATH": str(config.warehouse_path(home)),
        "INSIGHTFLOW_LAKE_DIR": str(config.lake_dir(home)),
    }


def _publish(results: dict[str, LandResult], failures: dict[str, str], dbt_summary, freshness: list[dict]) -> None:
    rows = []
    for name in DATASETS:
        if name in results:
            r = results[name]
            rows.append(
                {
                    "dataset": name,
                    "status": r.status,
                    "rows": r.rows,
                    "partitions_written": len(r.partitions_written),
                    "partitions_unchanged": len(r.partitions_unchanged),
                    "partitions_deleted": len(r.partitions_deleted),
                    "bytes": r.bytes,
                    "source_etag": r.source_etag or "",
                    "note": r.note,
                }
            )
        elif name in failures:
            zero = dict.fromkeys(
                ("rows", "partitions_written", "partitions_unchanged", "partitions_deleted", "bytes"), 0
            )
            rows.append({"dataset": name, "status": "failed", **zero, "source_etag": "", "note": failures[name][:300]})
    create_table_artifact(
        rows, key="insightflow-datasets", description="Datasets fetched, validated and landed by this run"
    )
    if freshness:
        create_table_artifact(
            freshness,
            key="insightflow-freshness",
            description="Is the data late? Each dataset's newest period against its contract, and dbt source freshness",
        )
    if dbt_summary is not None:
        if dbt_summary.skipped:
            create_markdown_artifact(
                f"dbt build skipped: {dbt_summary.reason}.", key="insightflow-dbt", description="dbt results"
            )
        else:
            create_table_artifact(
                dbt_summary.table(),
                key="insightflow-dbt",
                description=f"dbt build on target {dbt_summary.target} in {dbt_summary.elapsed_s}s",
            )


@flow(name="insightflow", log_prints=True, **orchestration.flow_retry_options())
def insightflow(
    datasets: list[str] | None = None,
    target: Literal["dev", "prod"] = "dev",
    sample: bool = False,
    sample_faults: dict[str, str] | None = None,
    sample_release: int = 0,
    home: str | None = None,
    dosm_base_url: str | None = None,
    datagovmy_base_url: str | None = None,
    run_dbt: bool = True,
    dbt_node_tasks: bool = True,
    full_refresh: bool = False,
    lake_block: str = "insightflow-lake",
    aws_credentials_block: str = "insightflow-aws",
    athena_block: str = "insightflow-athena",
    catalog_mode: Literal["partitions", "crawler"] = "partitions",
    lock_timeout_s: float = 900.0,
    freshness_as_of: date | None = None,
) -> dict:
    """Fetch DOSM and data.gov.my datasets, land them as partitioned Parquet, and build the dbt star schema."""
    # Transient faults are retried by Prefect (FLOW_RETRIES attempts more), permanent ones fail now.
    # Events wait out a Prefect API outage instead of being dropped (tasks/core/orchestration.py).
    with orchestration.retry_only_transient(), orchestration.events_ride_out_api_outages():
        logger = get_run_logger()
        names = list(datasets or DATASETS)
        unknown = sorted(set(names) - set(DATASETS))
        if unknown:
            raise ValueError(f"unknown dataset(s) {', '.join(unknown)}; known: {', '.join(DATASETS)}")
        home_dir = config.insightflow_home(home)

        with contextlib.ExitStack() as stack:
            if sample:
                server = stack.enter_context(sample_server_for_run(sample_faults, sample_release).running())
                dosm_base_url = datagovmy_base_url = server.url()
                logger.info("sample mode: serving the deterministic sample from %s", server.url())
            stack.enter_context(home_lock(home_dir, timeout_s=lock_timeout_s, what="insightflow"))
            lake = open_lake(target, home, lake_block)
            if isinstance(lake, LocalLake):
                lake.sweep_temporary("raw")
                lake.sweep_temporary("history")

            urls = [source_url(DATASETS[n], dosm_base_url, datagovmy_base_url) for n in names]
            fetched = fetch_dataset.map(names, urls, unmapped(lake))
            validated = validate_dataset.map(fetched, unmapped(lake))
            landed = land_dataset.map(validated, unmapped(lake))
            wait(landed)

            results: dict[str, LandResult] = {}
            failures: dict[str, str] = {}
            causes: dict[str, BaseException | None] = {}  # each failed dataset's own exception
            before_landing: dict[str, tuple[str, str]] = {}  # land-dataset reports its own failures
            for name, url, chain in zip(names, urls, zip(fetched, validated, landed, strict=True), strict=True):
                if chain[-1].state.is_completed():
                    results[name] = chain[-1].result()
                else:
                    failures[name], causes[name] = _failure(chain)
                    if any(f.state.is_failed() or f.state.is_crashed() for f in chain[:-1]):
                        before_landing[name] = (url, failures[name])
            lineage.report_failed_before_landing(lake, before_landing)

            if results:
                update_catalog(
                    list(results.values()),
                    lake,
                    mode=catalog_mode,
                    athena_block=athena_block,
                    credentials_block=aws_credentials_block,
                )

            dbt_summary = None
            if run_dbt and results:
                if target == "prod":
                    env = load_dbt_prod_env(athena_block=athena_block, credentials_block=aws_credentials_block)
                else:
                    env = _dev_warehouse_env(home)
                dbt_summary = build_warehouse(
                    lake,
                    target,
                    env,
                    home_dir / "dbt" / f"insightflow-{target}",
                    failed=sorted(failures),
                    full_refresh=full_refresh,
                    node_tasks=dbt_node_tasks,
                )
            # Live sources are judged against today; the sample against its own as-of date (a first run is
            # fresh); freshness_as_of overrides both (backfills, tests).
            as_of = freshness_as_of or (SAMPLE_AS_OF if sample else None)
            judged = "the given date" if freshness_as_of else "the sample's as-of date" if sample else "today"
            verdicts = check_freshness(lake, list(results), as_of, judged) if results else []
            freshness = [v.row() for v in verdicts]
            # With every dbt build; a skipped build (nothing landed) skips it too, keeping an unchanged re-run at
            # ~2 s instead of paying dbt's start (5-20 s cold here): the contract check, whose lags equal
            # dbt's warn_after (tests/tasks/insightflow/test_freshness.py), still judges every dataset on such a run.
            if dbt_summary is not None and not dbt_summary.skipped:
                freshness += check_source_freshness(target, env, home_dir / "dbt" / f"insightflow-{target}", as_of)
            # Under the home lock, so a second run cannot interleave its report with this one's; not after a
            # partial landing, whose marts are partly stale (the run fails with IngestFailed below).
            report = (
                publish_insightflow_report(lake, target, home, dbt_summary, athena_block, aws_credentials_block)
                if dbt_summary is not None and not failures
                else None
            )

        orchestration.publish("the run's artifacts", _publish, results, failures, dbt_summary, freshness)
        lineage.publish(lake, dict(zip(names, urls, strict=True)), results, failures)
        summary = {
            "target": target,
            "lake": lake.uri(),
            "warehouse": str(config.warehouse_path(home)) if target == "dev" else "athena",
            "datasets": {n: r.status for n, r in results.items()} | {n: "failed" for n in failures},
            "dbt": None
            if dbt_summary is None
            else ("skipped" if dbt_summary.skipped else f"{len(dbt_summary.nodes)} nodes"),
            "report": None if report is None else report.latest_uri,
            "freshness": {
                "as_of": (as_of or datetime.now(UTC).date()).isoformat(),
                "judged_against": judged,
                "rows": freshness,
            },
        }
        if failures:
            listed = "; ".join(f"{name}: {cause}" for name, cause in sorted(failures.items()))
            raise IngestFailed(
                f"{len(failures)} of {len(names)} dataset(s) failed to land: {listed}", [*filter(None, causes.values())]
            )
        return summary


def _print_summary(summary: dict, dashboard_url: str | None) -> None:
    print("\nInsightFlow run complete.")
    for name, status in summary["datasets"].items():
        print(f"  {name:<10} {status}")
    print(f"  dbt        {summary['dbt']}")
    _print_freshness(summary.get("freshness"))
    print(f"\nLake:      {summary['lake']}")
    if summary["target"] == "dev":
        wh = summary["warehouse"]
        print(f"Warehouse: {wh}")
        print("Query it, for example:")
        print(
            f"  python -c \"import duckdb; duckdb.connect('{wh}', read_only=True)"
            ".sql('select * from fct_retail_sales_monthly order by month_start_date desc limit 10').show()\""
        )
    else:
        print(ATHENA_QUERY_HINT)
    if dashboard_url:
        print(f"Dashboard: {dashboard_url}")
    print(f"\nReport:    {summary['report'] or 'not built (dbt did not run)'}")


def _print_freshness(freshness: dict | None) -> None:
    if not freshness or not freshness["rows"]:
        return
    print(f"\nFreshness as of {freshness['as_of']} ({freshness['judged_against']}):")
    for row in freshness["rows"]:
        if row["check"] != "contract" or row["status"] == "not tracked":
            continue
        dbt = next(
            (r for r in freshness["rows"] if r["check"] == "dbt source" and r["dataset"] == row["dataset"]), None
        )
        age = f"{row['age (days)']} d old, allowed {row['allowed (days)']} d"
        print(
            f"  {row['dataset']:<10} newest {row['newest period']:<10} {age:<28} {row['status']}"
            + (f" (dbt: {dbt['status']})" if dbt else "")
        )


def _sample_fault(value: str) -> tuple[str, str]:
    dataset, _, fault = value.partition("=")
    if dataset not in DATASETS or fault.split(":")[0] not in FAULTS:
        raise argparse.ArgumentTypeError(
            f"expected DATASET=FAULT with DATASET in {', '.join(DATASETS)} and FAULT in {', '.join(FAULTS)}"
        )
    return dataset, fault


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the InsightFlow pipeline locally.")
    parser.add_argument("--sample", action="store_true", help="run offline on the deterministic sample data")
    parser.add_argument(
        "--sample-fault",
        type=_sample_fault,
        action="append",
        default=[],
        metavar="DATASET=FAULT",
        help="with --sample, serve a broken payload for a dataset to try the failure path (e.g. fuelprice=html)",
    )
    parser.add_argument(
        "--sample-release",
        type=int,
        default=0,
        metavar="N",
        help="with --sample, serve the N-th later release: N new months, each release revising the 3 before it",
    )
    parser.add_argument("--datasets", nargs="*", choices=sorted(DATASETS), help="only these datasets (default: all)")
    parser.add_argument("--home", help="INSIGHTFLOW_HOME to use (default: $INSIGHTFLOW_HOME or ./.insightflow)")
    parser.add_argument("--target", choices=["dev", "prod"], default="dev")
    parser.add_argument("--full-refresh", action="store_true", help="rebuild dbt models from scratch")
    parser.add_argument("--no-dbt", action="store_true", help="land the lake only")
    parser.add_argument(
        "--fast-dbt", action="store_true", help="run dbt inside one task, without a task run per model and test"
    )
    parser.add_argument(
        "--freshness-as-of",
        type=date.fromisoformat,
        metavar="YYYY-MM-DD",
        help="judge the data's freshness as of this day (default: today; the sample's own date with --sample)",
    )
    args = parser.parse_args(argv)
    if args.sample_fault and not args.sample:
        parser.error("--sample-fault needs --sample")
    if args.sample_release and not args.sample:
        parser.error("--sample-release needs --sample")
    if args.sample_release < 0:
        parser.error("--sample-release must be 0 or more")
    # At a terminal a failure is reported now, not after FLOW_RETRIES waits: rerun the command instead.
    run = console.run_flow(
        insightflow.with_options(retries=0),
        datasets=args.datasets,
        sample=args.sample,
        sample_faults=dict(args.sample_fault) or None,
        sample_release=args.sample_release,
        home=args.home,
        target=args.target,
        full_refresh=args.full_refresh,
        run_dbt=not args.no_dbt,
        dbt_node_tasks=not args.fast_dbt,
        freshness_as_of=args.freshness_as_of,
    )
    return console.exit_status(run, "InsightFlow", _print_summary)


if __name__ == "__main__":
    sys.exit(main())
