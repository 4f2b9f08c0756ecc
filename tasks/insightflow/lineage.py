"""InsightFlow's asset lineage: the datasets that never reached the lake, and the sources the diagram starts from.

The steps emit their own asset events (land: the lake dataset; dbt: sources keyed as that dataset,
then every model; report: the HTML report). What no step can emit is the failure of a dataset whose
fetch or validation failed before landing began: the flow reports it here, as a failed
materialization of the lake dataset with the same cause the run's failure message gives.
"""

from __future__ import annotations

from collections.abc import Mapping

from tasks.core import assets
from tasks.core.lake import Lake
from tasks.core.lineage import Lineage, publish_lineage
from tasks.insightflow.ingest.land import LandResult, lake_asset_key

FLOW = "insightflow"


def report_failed_before_landing(lake: Lake, failed: Mapping[str, tuple[str, str]]) -> None:
    """``failed``: dataset → (source URL, cause), for datasets whose landing step never ran."""
    for name, (url, cause) in sorted(failed.items()):
        assets.failed(
            lake_asset_key(lake, name),
            [assets.url_key(url)],
            cause if cause.startswith(f"dataset {name}") else f"dataset {name}: {cause}",
            name=f"raw/{name}",
            layer="lake",
            by=FLOW,
        )


def publish(
    lake: Lake, urls: Mapping[str, str], results: Mapping[str, LandResult], failures: Mapping[str, str]
) -> Lineage:
    """The ``insightflow-lineage`` artifact: each source with what this run got from it, then everything downstream."""
    sources = {}
    for name, url in urls.items():
        if name in failures:
            sources[assets.url_key(url)] = "failed this run"
        elif name in results:
            r = results[name]
            sources[assets.url_key(url)] = "new content" if r.status == "landed" else (r.note or "unchanged")
    return publish_lineage(FLOW, lake, sources)
