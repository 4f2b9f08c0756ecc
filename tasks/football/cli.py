"""``python flows/football.py``: the command line's options, and what it prints when the tick ends.

Each option maps to a flow parameter or a field of ``FootballSettings`` (docs/football.md);
tasks/core/console.py runs the flow so that the console stays readable.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import date
from typing import Any

from pydantic import ValidationError

from tasks.core import console
from tasks.football.freshness import DEFAULT_ALLOWED_DAYS
from tasks.football.settings import FootballSettings

QUERY_EXAMPLE = "select * from football.fct_football_team_top_scorers order by competition_code, position"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Run the football pipeline locally.")
    p.add_argument("--sample", action="store_true", help="run offline on the deterministic sample")
    p.add_argument(
        "--sample-matchday",
        type=int,
        metavar="N",
        help="with --sample: the season as it stood after N matchdays (default: all played)",
    )
    p.add_argument("--competitions", nargs="*", default=["PL"], help="competition codes (default: PL)")
    p.add_argument("--season", type=int, help="season start year (default: the current season)")
    p.add_argument("--home", help="INSIGHTFLOW_HOME to use (default: $INSIGHTFLOW_HOME or ./.insightflow)")
    p.add_argument("--target", choices=["dev", "prod"], default="dev")
    p.add_argument("--no-dbt", action="store_true", help="land and load only")
    p.add_argument("--full-check", action="store_true", help="build and run every data test over all rows")
    p.add_argument("--full-refresh", action="store_true", help="reload the lake and rebuild incremental models")
    p.add_argument(
        "--freshness-as-of",
        type=date.fromisoformat,
        metavar="YYYY-MM-DD",
        help="judge the standings' lateness as of this day (default: today)",
    )
    p.add_argument(
        "--stale-after-days",
        type=int,
        default=DEFAULT_ALLOWED_DAYS,
        metavar="N",
        help=f"days in season without a new matchday before the standings are stale (default {DEFAULT_ALLOWED_DAYS})",
    )
    return p


def parameters(args: argparse.Namespace) -> dict[str, Any]:
    """The flow's parameters for parsed ``args``; raises ``ValidationError`` for a setting out of range."""
    settings = FootballSettings(
        home=args.home,
        sample=args.sample,
        sample_matchday=args.sample_matchday,
        run_dbt_build=not args.no_dbt,
        freshness_as_of=args.freshness_as_of,
        stale_after_days=args.stale_after_days,
    )
    return {
        "competitions": args.competitions,
        "season": args.season,
        "target": args.target,
        "full_check": args.full_check,
        "full_refresh": args.full_refresh,
        "settings": settings,
    }


def main(flow: Callable[..., Any], argv: list[str] | None = None) -> int:
    """Parse ``argv``, run ``flow`` and print its summary; the exit status is 0 for a completed tick."""
    cli = parser()
    args = cli.parse_args(argv)
    try:
        chosen = parameters(args)
    except ValidationError as exc:
        cli.error(str(exc))
    return console.exit_status(console.run_flow(flow, **chosen), "Football", print_summary)


def print_summary(summary: dict[str, Any], dashboard_url: str | None) -> None:
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
        print(console.duckdb_query_example(summary["warehouse"], QUERY_EXAMPLE))
    print(f"Standings: {summary['report'] or 'not published (dbt did not run)'}")
    if dashboard_url:
        print(f"Dashboard: {dashboard_url}")
