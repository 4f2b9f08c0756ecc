"""``python flows/insightflow.py``: the command line's options, and what it prints when the run ends.

Each option maps to a flow parameter or a field of ``InsightFlowSettings`` (README, "Command line");
tasks/core/console.py runs the flow so that the console stays readable.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from pydantic import ValidationError

from tasks.core import console
from tasks.insightflow.contracts import DATASETS
from tasks.insightflow.settings import InsightFlowSettings
from tasks.insightflow.warehouse.athena import ATHENA_QUERY_HINT

QUERY_EXAMPLE = "select * from fct_retail_sales_monthly order by month_start_date desc limit 10"


def _sample_fault(faults: Sequence[str]) -> Callable[[str], tuple[str, str]]:
    def parse(value: str) -> tuple[str, str]:
        dataset, _, fault = value.partition("=")
        if dataset not in DATASETS or fault.split(":")[0] not in faults:
            raise argparse.ArgumentTypeError(
                f"expected DATASET=FAULT with DATASET in {', '.join(DATASETS)} and FAULT in {', '.join(faults)}"
            )
        return dataset, fault

    return parse


def parser(faults: Sequence[str]) -> argparse.ArgumentParser:
    """The command line; ``faults`` are the sample server's fault names (its room is the flow's to import)."""
    p = argparse.ArgumentParser(description="Run the InsightFlow pipeline locally.")
    p.add_argument("--sample", action="store_true", help="run offline on the deterministic sample data")
    p.add_argument(
        "--sample-fault",
        type=_sample_fault(faults),
        action="append",
        default=[],
        metavar="DATASET=FAULT",
        help="with --sample, serve a broken payload for a dataset to try the failure path (e.g. fuelprice=html)",
    )
    p.add_argument(
        "--sample-release",
        type=int,
        default=0,
        metavar="N",
        help="with --sample, serve the N-th later release: N new months, each release revising the 3 before it",
    )
    p.add_argument("--datasets", nargs="*", choices=sorted(DATASETS), help="only these datasets (default: all)")
    p.add_argument("--home", help="INSIGHTFLOW_HOME to use (default: $INSIGHTFLOW_HOME or ./.insightflow)")
    p.add_argument("--target", choices=["dev", "prod"], default="dev")
    p.add_argument("--full-refresh", action="store_true", help="rebuild dbt models from scratch")
    p.add_argument("--no-dbt", action="store_true", help="land the lake only")
    p.add_argument(
        "--fast-dbt", action="store_true", help="run dbt inside one task, without a task run per model and test"
    )
    p.add_argument(
        "--freshness-as-of",
        type=date.fromisoformat,
        metavar="YYYY-MM-DD",
        help="judge the data's freshness as of this day (default: today; the sample's own date with --sample)",
    )
    return p


def parameters(args: argparse.Namespace) -> dict[str, Any]:
    """The flow's parameters for parsed ``args``; raises ``ValidationError`` for options that do not go together."""
    settings = InsightFlowSettings(
        home=args.home,
        sample=args.sample,
        sample_faults=dict(args.sample_fault),
        sample_release=args.sample_release,
        run_dbt=not args.no_dbt,
        dbt_node_tasks=not args.fast_dbt,
    )
    return {
        "datasets": args.datasets,
        "target": args.target,
        "full_refresh": args.full_refresh,
        "freshness_as_of": args.freshness_as_of,
        "settings": settings,
    }


def main(flow: Callable[..., Any], argv: list[str] | None = None, faults: Sequence[str] = ()) -> int:
    """Parse ``argv``, run ``flow`` and print its summary; the exit status is 0 for a completed run."""
    cli = parser(faults)
    args = cli.parse_args(argv)
    if args.sample_fault and not args.sample:
        cli.error("--sample-fault needs --sample")
    if args.sample_release and not args.sample:
        cli.error("--sample-release needs --sample")
    if args.sample_release < 0:
        cli.error("--sample-release must be 0 or more")
    try:
        chosen = parameters(args)
    except ValidationError as exc:
        cli.error(str(exc))
    # At a terminal a failure is reported now, not after FLOW_RETRIES waits: rerun the command instead.
    run = console.run_flow(flow.with_options(retries=0), **chosen)
    return console.exit_status(run, "InsightFlow", print_summary)


def print_summary(summary: dict, dashboard_url: str | None) -> None:
    print("\nInsightFlow run complete.")
    for name, status in summary["datasets"].items():
        print(f"  {name:<10} {status}")
    print(f"  dbt        {summary['dbt']}")
    print_freshness(summary.get("freshness"))
    print(f"\nLake:      {summary['lake']}")
    if summary["target"] == "dev":
        print(f"Warehouse: {summary['warehouse']}")
        print("Query it, for example:")
        print(console.duckdb_query_example(summary["warehouse"], QUERY_EXAMPLE))
    else:
        print(ATHENA_QUERY_HINT)
    if dashboard_url:
        print(f"Dashboard: {dashboard_url}")
    print(f"\nReport:    {summary['report'] or 'not built (dbt did not run)'}")


def print_freshness(freshness: dict | None) -> None:
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
