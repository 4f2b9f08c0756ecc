"""InsightFlow: Malaysian open data → data lake → warehouse → dbt star schema, daily at 05:00 UTC.

Fetches DOSM's wholesale & retail trade indices (headline ``iowrt`` and by MSIC group ``iowrt_3d``),
data.gov.my's weekly fuel prices and the MSIC dictionary; validates each against its contract; lands
Hive-partitioned Parquet in the lake; builds and tests the dbt project ``dbt/insightflow``.

Locally (the default, ``target=dev``) the lake is ``$INSIGHTFLOW_HOME/lake`` and the warehouse
DuckDB at ``$INSIGHTFLOW_HOME/warehouse.duckdb``::

    python flows/insightflow.py            # live sources
    python flows/insightflow.py --sample   # offline, deterministic sample through the same path

``target=prod`` lands in S3 (an ``S3Bucket`` block), catalogues in Glue and runs dbt on Athena. The
parameters are what a person picks per run; how the run is wired (home, mirrors, the sample, blocks,
dbt options) is the ``settings`` form (tasks/insightflow/settings.py); the command line is
tasks/insightflow/cli.py.
"""

from __future__ import annotations

import contextlib
import sys
from datetime import date
from pathlib import Path
from typing import Literal

from prefect import flow, unmapped

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tasks.core import orchestration
from tasks.insightflow import cli, lineage
from tasks.insightflow.catalog.update import update_catalog
from tasks.insightflow.freshness import judge_freshness
from tasks.insightflow.ingest.fetch import fetch_dataset
from tasks.insightflow.ingest.land import land_dataset
from tasks.insightflow.ingest.validate import validate_dataset
from tasks.insightflow.report.publish import publish_insightflow_report
from tasks.insightflow.sample.data import SAMPLE_AS_OF
from tasks.insightflow.sample.server import FAULTS, sample_server_for_run
from tasks.insightflow.settings import InsightFlowSettings, dataset_names, open_runtime
from tasks.insightflow.summary import IngestFailed, collect_landings, finish_run
from tasks.insightflow.warehouse.build import build_warehouse

__all__ = ["IngestFailed", "InsightFlowSettings", "insightflow"]
LOCAL_SETTINGS = InsightFlowSettings()  # frozen: one shared default is safe


@flow(name="insightflow", log_prints=True, **orchestration.flow_retry_options())
def insightflow(
    datasets: list[str] | None = None,
    target: Literal["dev", "prod"] = "dev",
    full_refresh: bool = False,
    freshness_as_of: date | None = None,
    settings: InsightFlowSettings = LOCAL_SETTINGS,
) -> dict:
    """Fetch DOSM and data.gov.my datasets, land them as partitioned Parquet, and build the dbt star schema."""
    # Transient faults are retried by Prefect (FLOW_RETRIES attempts more), permanent ones fail now.
    # Events wait out a Prefect API outage instead of being dropped (tasks/core/orchestration.py).
    with orchestration.retry_only_transient(), orchestration.events_ride_out_api_outages():
        names = dataset_names(datasets)
        with contextlib.ExitStack() as stack:
            sample = None
            if settings.sample:
                server = sample_server_for_run(settings.sample_faults, settings.sample_release)
                sample = stack.enter_context(server.running())
            run = stack.enter_context(open_runtime(target, settings, sample_url=sample and sample.url()))

            urls = {name: run.source_url(name) for name in names}
            fetched = fetch_dataset.map(names, list(urls.values()), unmapped(run.lake))
            validated = validate_dataset.map(fetched, unmapped(run.lake))
            landed = land_dataset.map(validated, unmapped(run.lake))
            landings = collect_landings(urls, fetched, validated, landed)
            lineage.report_failed_before_landing(run.lake, landings.before_landing)
            if landings.results:
                update_catalog(
                    list(landings.results.values()),
                    run.lake,
                    mode=settings.catalog_mode,
                    athena_block=settings.athena_block,
                    credentials_block=settings.aws_credentials_block,
                )
            dbt_summary = None
            if settings.run_dbt and landings.results:
                dbt_summary = build_warehouse(
                    run.lake,
                    target,
                    run.dbt_env,
                    run.dbt_work_dir,
                    failed=sorted(landings.failures),
                    full_refresh=full_refresh,
                    node_tasks=settings.dbt_node_tasks,
                )
            freshness = judge_freshness(
                run, list(landings.results), dbt_summary, freshness_as_of, SAMPLE_AS_OF if settings.sample else None
            )
            # Under the home lock, so a second run cannot interleave its report with this one's; not after a
            # partial landing, whose marts are partly stale (the run fails with IngestFailed in finish_run).
            report = None
            if dbt_summary is not None and not landings.failures:
                report = publish_insightflow_report(
                    run.lake, target, settings.home, dbt_summary, settings.athena_block, settings.aws_credentials_block
                )
        return finish_run(run, landings, dbt_summary, freshness, report)


def main(argv: list[str] | None = None) -> int:
    """``python flows/insightflow.py [--sample] ...``: run the flow for a person at a terminal."""
    return cli.main(insightflow, argv, faults=FAULTS)


if __name__ == "__main__":
    sys.exit(main())
