"""What a football tick did, gathered once: the snapshot and dbt artifacts, the lineage, the summary.

``finish_tick`` publishes the tick's tables (snapshots landed or confirmed, the dbt build) and its lineage,
and returns the summary the command line prints (tasks/football/cli.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from tasks.core import orchestration
from tasks.football import lineage
from tasks.football.snapshots import Outcome

if TYPE_CHECKING:
    from tasks.football.freshness import StandingsVerdict
    from tasks.football.report import FootballReport
    from tasks.football.settings import Runtime
    from tasks.football.warehouse import WarehouseSync


def publish_artifacts(outcomes: list[Outcome], sync: WarehouseSync) -> None:
    """The tick's tables in the UI: each snapshot landed or confirmed, what an idle tick skipped, the dbt build."""
    landed = sum(o.landed for o in outcomes)
    create_table_artifact(
        [o.row() for o in outcomes],
        key="football-snapshots",
        description=f"{landed} snapshot(s) landed, {len(outcomes) - landed} unchanged "
        "(not_modified: HTTP 304; unchanged: same content hash)",
    )
    if sync.plan.idle:
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
    if sync.dbt_summary is not None:
        create_table_artifact(
            sync.dbt_summary.table(),
            key="football-dbt",
            description=f"dbt build of dbt/football on {sync.dbt_summary.target} in {sync.dbt_summary.elapsed_s}s",
        )


def publish_lateness(verdicts: list[StandingsVerdict], stale_after_days: int) -> None:
    """The ``football-lateness`` table: each competition's matchday against the season's calendar."""
    create_table_artifact(
        [v.row() for v in verdicts],
        key="football-lateness",
        description="Standings lateness per competition: stale when, in season, the matchday has not moved "
        f"for more than {stale_after_days} days while the season's calendar is past it",
    )


def finish_tick(
    run: Runtime,
    outcomes: list[Outcome],
    urls: Mapping[tuple[str, str], str],
    sync: WarehouseSync,
    lateness: list[StandingsVerdict],
    report: FootballReport | None,
) -> dict[str, Any]:
    """Publish the tick's artifacts and lineage; return its summary."""
    orchestration.publish("the run's artifacts", publish_artifacts, outcomes, sync)
    orchestration.publish("the lateness table", publish_lateness, lateness, run.settings.stale_after_days)
    lineage.publish(run.lake, outcomes, urls)
    dbt = sync.dbt_summary
    return {
        "target": run.target,
        "lake": run.lake.uri(),
        "warehouse": run.warehouse,
        "snapshots": [o.key for o in outcomes if o.landed],
        "unchanged": [f"{o.competition} {o.endpoint} {o.season} ({o.status})" for o in outcomes if not o.landed],
        "loaded": sync.loaded,
        "dbt": None if dbt is None else f"{len(dbt.nodes)} nodes in {dbt.elapsed_s}s",
        "report": None
        if report is None
        else f"artifact football-standings ({report.competitions} competitions, {report.charts} points charts)",
    }
