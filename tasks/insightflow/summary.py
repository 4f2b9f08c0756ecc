"""What an InsightFlow run did, gathered once: each dataset's landing or failure, the artifacts, the summary.

The flow maps fetch → validate → land over the datasets; ``collect_landings`` waits for the chains and
sorts them into landed results and failures (with the first failed stage's own message, which names the
dataset, the URL and the cause). ``finish_run`` publishes the run's tables (datasets, freshness, dbt) and
its lineage, and returns the summary the command line prints; a run where any dataset failed to land
ends Failed with ``IngestFailed`` listing each, after everything that did land was published.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.futures import PrefectFuture, wait

from tasks.core import orchestration
from tasks.insightflow import lineage
from tasks.insightflow.contracts import DATASETS
from tasks.insightflow.ingest.land import LandResult

if TYPE_CHECKING:
    from tasks.insightflow.freshness import Freshness
    from tasks.insightflow.report.publish import ReportResult
    from tasks.insightflow.settings import Runtime

NOTE_CHARS = 300
FAILED_ROW = {
    "status": "failed",
    "rows": 0,
    "partitions_written": 0,
    "partitions_unchanged": 0,
    "partitions_deleted": 0,
    "bytes": 0,
    "source_etag": "",
}


class IngestFailed(RuntimeError):
    """One or more datasets did not land; the message lists each with its cause.

    ``causes`` holds each dataset's own exception (where one was raised), so that the flow's retry
    policy (tasks/core/orchestration.py) can tell a fault that may clear from one that cannot.
    """

    def __init__(self, message: str, causes: list[BaseException] | None = None):
        super().__init__(message)
        self.causes = list(causes or [])


@dataclass
class Landings:
    """Per dataset of one run: its source URL, then either its landing result or why it failed."""

    urls: dict[str, str]
    results: dict[str, LandResult] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    causes: dict[str, BaseException | None] = field(default_factory=dict)  # each failed dataset's own exception
    # (url, cause) of the datasets whose land step never ran; land-dataset reports its own failures.
    before_landing: dict[str, tuple[str, str]] = field(default_factory=dict)


def failure(futures: Sequence[PrefectFuture]) -> tuple[str, BaseException | None]:
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


def collect_landings(urls: Mapping[str, str], *stages: Sequence[PrefectFuture]) -> Landings:
    """Wait for the mapped stages (fetch, validate, land: one future per dataset each) and sort the outcomes."""
    wait(stages[-1])
    landings = Landings(urls=dict(urls))
    for name, chain in zip(urls, zip(*stages, strict=True), strict=True):
        if chain[-1].state.is_completed():
            landings.results[name] = chain[-1].result()
            continue
        landings.failures[name], landings.causes[name] = failure(chain)
        if any(f.state.is_failed() or f.state.is_crashed() for f in chain[:-1]):
            landings.before_landing[name] = (urls[name], landings.failures[name])
    return landings


def dataset_rows(landings: Landings) -> list[dict[str, Any]]:
    """The ``insightflow-datasets`` table: one row per dataset, in contract order."""
    rows = []
    for name in DATASETS:
        if name in landings.results:
            r = landings.results[name]
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
        elif name in landings.failures:
            rows.append({"dataset": name, **FAILED_ROW, "note": landings.failures[name][:NOTE_CHARS]})
    return rows


def publish_artifacts(landings: Landings, dbt_summary: Any, freshness: Freshness) -> None:
    """The run's tables in the UI: datasets landed, freshness, and the dbt build (or why it was skipped)."""
    create_table_artifact(
        dataset_rows(landings),
        key="insightflow-datasets",
        description="Datasets fetched, validated and landed by this run",
    )
    if freshness.rows:
        create_table_artifact(
            freshness.rows,
            key="insightflow-freshness",
            description="Is the data late? Each dataset's newest period against its contract, and dbt source freshness",
        )
    if dbt_summary is None:
        return
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


def finish_run(
    run: Runtime, landings: Landings, dbt_summary: Any, freshness: Freshness, report: ReportResult | None
) -> dict[str, Any]:
    """Publish the run's artifacts and lineage; return its summary, or raise ``IngestFailed`` if a dataset did not land."""
    orchestration.publish("the run's artifacts", publish_artifacts, landings, dbt_summary, freshness)
    lineage.publish(run.lake, landings.urls, landings.results, landings.failures)
    if landings.failures:
        listed = "; ".join(f"{name}: {cause}" for name, cause in sorted(landings.failures.items()))
        raise IngestFailed(
            f"{len(landings.failures)} of {len(landings.urls)} dataset(s) failed to land: {listed}",
            [*filter(None, landings.causes.values())],
        )
    return {
        "target": run.target,
        "lake": run.lake.uri(),
        "warehouse": run.warehouse,
        "datasets": {n: r.status for n, r in landings.results.items()},
        "dbt": None
        if dbt_summary is None
        else ("skipped" if dbt_summary.skipped else f"{len(dbt_summary.nodes)} nodes"),
        "report": None if report is None else report.latest_uri,
        "freshness": {
            "as_of": freshness.as_of.isoformat(),
            "judged_against": freshness.judged_against,
            "rows": freshness.rows,
        },
    }
