"""The catalog step: make what was landed queryable by Athena (and dbt's prod target) through Glue.

Two modes, chosen per run (``catalog_mode``):
- ``partitions`` (default): sync each landed dataset's Glue table and register exactly the partitions
  this run wrote (tasks/insightflow/catalog/glue.py). Cheap, immediate, no crawler to pay for or wait on.
- ``crawler``: run the Glue crawler named in the Athena target block (tasks/insightflow/catalog/crawler.py).

A local lake needs no catalog: DuckDB reads the files directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from blocks import names
from tasks.core.aws import aws_client, with_retries
from tasks.insightflow.catalog.crawler import CRAWLER_TIMEOUT_S, CrawlResult, run_crawler
from tasks.insightflow.catalog.glue import (
    TRANSIENT_GLUE_ERRORS,
    CatalogResult,
    _error_code,
    catalog_landed,
    ensure_database,
)

if TYPE_CHECKING:
    from prefect_aws import AwsCredentials

    from blocks.athena import AthenaTarget
    from tasks.core.lake import Lake

CatalogMode = Literal["partitions", "crawler"]


def _is_transient(task, task_run, state) -> bool:
    try:
        state.result()
    except Exception as exc:
        from botocore.exceptions import ConnectionError as BotoConnectionError

        return _error_code(exc) in TRANSIENT_GLUE_ERRORS or isinstance(exc, BotoConnectionError)
    return False


def glue_client(credentials: AwsCredentials):
    """A Glue client from the AwsCredentials block (its region and endpoint_url apply), with our retry budget."""
    return aws_client(credentials, "glue")


def _load_blocks(athena_block: str, credentials_block: str) -> tuple[AthenaTarget, AwsCredentials]:
    from prefect_aws import AwsCredentials

    from blocks.athena import AthenaTarget

    credentials = with_retries(AwsCredentials.load(credentials_block, _sync=True))
    return AthenaTarget.load(athena_block, _sync=True), credentials


# The lake and land results are not worth hashing for a cache (and the lake holds credentials): NO_CACHE.
@task(
    name="catalog-partitions",
    cache_policy=NO_CACHE,
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=5),
    retry_jitter_factor=0.5,
    retry_condition_fn=_is_transient,
)
def catalog_partitions(
    results: Sequence[Any],
    lake: Lake,
    athena_block: str = names.ATHENA,
    credentials_block: str = names.AWS_CREDENTIALS,
) -> list[CatalogResult]:
    """Create or update each landed dataset's Glue table and register the partitions the run wrote."""
    logger = get_run_logger()
    target, credentials = _load_blocks(athena_block, credentials_block)
    glue = glue_client(credentials)
    if ensure_database(glue, target.glue_database):
        logger.info("Created Glue database %s", target.glue_database)
    catalogued = []
    for result in results:
        outcome = catalog_landed(glue, target.glue_database, lake, result)
        logger.info(
            "Glue %s.%s: table %s, %d partition(s) created, %d updated, %d deleted",
            target.glue_database,
            outcome.table,
            outcome.table_action,
            len(outcome.partitions_created),
            len(outcome.partitions_updated),
            len(outcome.partitions_deleted),
        )
        catalogued.append(outcome)
    return catalogued


@task(
    name="crawl-lake",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=exponential_backoff(backoff_factor=10),
    retry_condition_fn=_is_transient,
)
def crawl_lake(
    athena_block: str = names.ATHENA,
    credentials_block: str = names.AWS_CREDENTIALS,
    timeout_s: float = CRAWLER_TIMEOUT_S,
) -> CrawlResult:
    """Run the Glue crawler named in the Athena target block and wait for it to finish."""
    logger = get_run_logger()
    target, credentials = _load_blocks(athena_block, credentials_block)
    if not target.crawler_name:
        raise ValueError(
            f"catalog mode 'crawler' needs crawler_name in block {athena_block!r} (INSIGHTFLOW_GLUE_CRAWLER)"
        )
    outcome = run_crawler(glue_client(credentials), target.crawler_name, timeout_s=timeout_s)
    joined = " (joined a crawl already running)" if outcome.joined_running_crawl else ""
    logger.info("Glue crawler %s finished %s after %.1f s%s", outcome.crawler, outcome.status, outcome.waited_s, joined)
    return outcome


def update_catalog(
    results: Sequence[Any],
    lake: Lake,
    mode: CatalogMode = "partitions",
    athena_block: str = names.ATHENA,
    credentials_block: str = names.AWS_CREDENTIALS,
) -> list[CatalogResult] | CrawlResult | None:
    """Catalog what was landed in the chosen mode; a local lake needs no catalog (DuckDB reads the files)."""
    if not lake.uri().startswith("s3://"):
        return None
    if mode == "crawler":
        return crawl_lake(athena_block, credentials_block)
    if mode == "partitions":
        return catalog_partitions(results, lake, athena_block, credentials_block)
    raise ValueError(f"unknown catalog mode {mode!r}; expected 'partitions' or 'crawler'")
