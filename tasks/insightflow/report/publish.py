"""The InsightFlow report: does Malaysian retail trade move with the pump price? Charts and findings from the marts.

The last step of the flow, after dbt and still under the flow's home lock (so two runs on one home
cannot interleave their reports). It reads the marts through the warehouse the run used: the DuckDB
file locally, and on ``target=prod`` Athena itself, with PyAthena (installed with dbt-athena)
connecting through the same ``AthenaTarget`` and AWS credentials blocks dbt's prod target is built from. The SQL is plain enough for both engines;
the arithmetic (indexing, year-on-year growth, ranking) happens here, in Python, on a few hundred rows.
Its Revisions section (tasks/insightflow/report/revisions.py) lists what DOSM revised since the previous report.

It publishes the markdown artifact ``insightflow-report`` (charts as PNG data URIs, which Prefect's UI
renders), a standalone HTML page in the lake (``reports/insightflow/<date>-<run>.html`` and
``latest.html``; S3 in prod) and a link artifact to it. When dbt skipped its build because the marts'
inputs are unchanged, and the report code is unchanged too, the last report is republished from the
lake instead of queried and drawn again (well under a second).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from blocks import names
from tasks.core import config
from tasks.core.assets import location_key, materialized
from tasks.core.aws import botocore_config
from tasks.core.dbt.assets import built_model_keys
from tasks.core.lake import Lake, LocalLake
from tasks.core.orchestration import publish
from tasks.core.query import duckdb_query
from tasks.insightflow.contracts import DATASETS
from tasks.insightflow.report.findings import Findings, MartData, Query, compute_findings, read_marts
from tasks.insightflow.report.render import render_charts, render_html, render_markdown
from tasks.insightflow.report.revisions import Revisions, read_revisions
from tasks.insightflow.report.revisions import render_markdown as revisions_markdown
from tasks.insightflow.warehouse.build import inputs_fingerprint

ARTIFACT_KEY = "insightflow-report"
LINK_ARTIFACT_KEY = "insightflow-report-html"
PREFIX = "reports/insightflow"
LATEST_HTML = f"{PREFIX}/latest.html"
LATEST_MARKDOWN = f"{PREFIX}/latest.md"
STATE_KEY = f"{PREFIX}/_state.json"
# The marts findings.py reads (its SQL): the report asset's upstream.
MARTS_READ = (
    "fct_headline_vs_fuel_monthly",
    "fct_fuel_retail_correlation",
    "fct_retail_sales_monthly",
    "dim_msic_group",
)
# The report room's own code: a change to any of it draws the report again instead of republishing it.
_CODE = sorted(Path(__file__).parent.glob("*.py"))


@dataclass(frozen=True)
class ReportResult:
    """Where the report went and what it cost; returned to the flow for its summary."""

    html_uri: str
    latest_uri: str
    reused: bool
    seconds: float
    markdown_bytes: int
    png_bytes: dict[str, int]


def report_fingerprint(lake: Lake, target: str) -> str:
    """The marts' inputs (what dbt's skip decision hashes), the target and this report's own code."""
    digest = hashlib.sha256(f"{target}|{inputs_fingerprint(lake, list(DATASETS))}".encode())
    for path in _CODE:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def athena_query(athena_block: str, credentials_block: str, poll_interval_s: float = 1.0) -> Query:
    """Run SQL on Athena in dbt's prod schema, with PyAthena and the AthenaTarget + AwsCredentials blocks.

    ``poll_interval_s`` is how often PyAthena asks whether a query finished (its default, 1 s, suits Athena).
    """
    from prefect_aws import AwsCredentials
    from pyathena import connect
    from pyathena.cursor import DictCursor

    from blocks.athena import AthenaTarget

    athena = AthenaTarget.load(athena_block, _sync=True)
    credentials = AwsCredentials.load(credentials_block, _sync=True)
    endpoint = credentials.aws_client_parameters.endpoint_url

    def query(sql: str) -> list[dict[str, Any]]:
        with connect(
            s3_staging_dir=athena.s3_staging_dir,
            region_name=athena.region,
            work_group=athena.work_group,
            schema_name=athena.athena_schema,
            session=credentials.get_boto3_session(),
            cursor_class=DictCursor,
            config=botocore_config(credentials),
            poll_interval=poll_interval_s,
            **({"endpoint_url": str(endpoint)} if endpoint else {}),
        ) as con:
            return list(con.cursor().execute(sql).fetchall())

    return query


def _read(
    target: str, home: str | None, athena_block: str, credentials_block: str, since: str | None = None
) -> tuple[MartData, Revisions]:
    """The marts' rows, and the revisions first seen after ``since`` (the previous report's time)."""
    source = "DuckDB" if target == "dev" else "Athena"
    try:
        if target == "dev":
            query = duckdb_query(config.warehouse_path(home))
        else:
            query = athena_query(athena_block, credentials_block)
        return read_marts(query), read_revisions(query, since)
    except Exception as exc:
        raise RuntimeError(f"insightflow report: reading the marts from {source} failed: {exc}") from exc


def _run_label() -> tuple[str, str]:
    from prefect.runtime import flow_run

    name = flow_run.name or "manual"
    return name, f"{datetime.now(UTC):%Y-%m-%d}-{name}"


def _publish_artifacts(markdown: str, html_uri: str, run_name: str) -> None:
    publish("the report's artifacts", _create_artifacts, markdown, html_uri, run_name)


def _create_artifacts(markdown: str, html_uri: str, run_name: str) -> None:
    create_markdown_artifact(
        markdown,
        key=ARTIFACT_KEY,
        description="Retail trade vs pump prices: charts and findings from the InsightFlow marts",
    )
    link = Path(html_uri).as_uri() if not html_uri.startswith("s3://") else html_uri
    create_link_artifact(
        link,
        link_text=f"InsightFlow report (HTML, run {run_name})",
        key=LINK_ARTIFACT_KEY,
        description="Standalone HTML copy of the report in the lake; opens offline.",
    )


def _republish(lake: Lake, state: dict, run_name: str, started: float) -> ReportResult | None:
    markdown = lake.read(LATEST_MARKDOWN)
    if markdown is None or lake.read(state["html_key"]) is None:
        return None
    note = (
        f"> Republished by run {run_name}: the marts' inputs are unchanged since run {state['run_name']} "
        f"({state['generated_at']}), so this is that run's report.\n\n"
    )
    text = note + markdown.decode()
    _publish_artifacts(text, lake.uri(state["html_key"]), run_name)
    return ReportResult(
        html_uri=lake.uri(state["html_key"]),
        latest_uri=lake.uri(LATEST_HTML),
        reused=True,
        seconds=round(time.perf_counter() - started, 3),
        markdown_bytes=len(text.encode()),
        png_bytes=state.get("png_bytes", {}),
    )


def build_report(
    data: MartData, run_name: str, target: str, generated_at: str, revisions: Revisions | None = None
) -> tuple[Findings, str, str, dict]:
    """Findings, markdown and HTML for ``data`` (with a Revisions section when given); also each chart's PNG size."""
    found = compute_findings(data)
    charts = render_charts(data, found)
    header = {"run_name": run_name, "target": target, "generated_at": generated_at}
    markdown = render_markdown(found, charts, header, revisions_markdown(revisions) if revisions else "")
    return found, markdown, render_html(markdown), {name: len(png) for name, (_, png) in charts.items()}


def mart_keys(home: str | None, target: str) -> list[str]:
    """The asset keys of the marts the report reads, from the last dbt build's manifest for ``target``."""
    return built_model_keys(config.dbt_work_dir(home, "insightflow", target), MARTS_READ)


@task(name="insightflow-report", cache_policy=NO_CACHE)
def publish_insightflow_report(
    lake: Lake,
    target: str,
    home: str | None,
    dbt_summary: Any,
    athena_block: str = names.ATHENA,
    credentials_block: str = names.AWS_CREDENTIALS,
) -> ReportResult:
    """Chart the marts, write the findings, and publish them as artifacts and an HTML page in the lake.

    Call it while holding the home lock (the flow does): it decides between republishing and rebuilding
    from the lake's ``_state.json``, and two runs deciding at once would each write a report. A rebuilt
    report materializes the asset ``<lake>/reports/insightflow/latest.html`` from the marts it read.
    """
    with materialized(
        location_key(lake.uri(LATEST_HTML)),
        mart_keys(home, target),
        name="insightflow report",
        layer="report",
        by="insightflow",
        description="Retail trade vs pump prices: charts and findings from the InsightFlow marts (HTML)",
    ) as asset:
        result = _publish_report(lake, target, home, dbt_summary, athena_block, credentials_block)
        if result.reused:
            asset.skip()
        else:
            asset.add({"html": result.html_uri, "markdown_bytes": result.markdown_bytes})
    return result


def _publish_report(
    lake: Lake, target: str, home: str | None, dbt_summary: Any, athena_block: str, credentials_block: str
) -> ReportResult:
    logger = get_run_logger()
    started = time.perf_counter()
    run_name, stem = _run_label()
    fingerprint = report_fingerprint(lake, target)
    state = lake.read_json(STATE_KEY) or {}
    if getattr(dbt_summary, "skipped", False) and state.get("fingerprint") == fingerprint:
        reused = _republish(lake, state, run_name, started)
        if reused is not None:
            logger.info("report: marts unchanged; republished %s in %.3fs", reused.html_uri, reused.seconds)
            return reused

    now = datetime.now(UTC)
    generated_at = f"{now:%Y-%m-%d %H:%M} UTC"
    # Revisions are counted from the previous report on: values first seen after it was published.
    data, revisions = _read(target, home, athena_block, credentials_block, since=state.get("published_at"))
    _, markdown, html, png_bytes = build_report(data, run_name, target, generated_at, revisions)
    html_key = f"{PREFIX}/{stem}.html"
    lake.write(html_key, html.encode())
    lake.write(LATEST_HTML, html.encode())
    lake.write(LATEST_MARKDOWN, markdown.encode())
    lake.write_json(
        STATE_KEY,
        {
            "fingerprint": fingerprint,
            "html_key": html_key,
            "run_name": run_name,
            "generated_at": generated_at,
            "published_at": f"{now:%Y-%m-%d %H:%M:%S}",
            "png_bytes": png_bytes,
        },
    )
    _publish_artifacts(markdown, lake.uri(html_key), run_name)
    result = ReportResult(
        html_uri=lake.uri(html_key),
        latest_uri=lake.uri(LATEST_HTML),
        reused=False,
        seconds=round(time.perf_counter() - started, 3),
        markdown_bytes=len(markdown.encode()),
        png_bytes=png_bytes,
    )
    logger.info(
        "report: %s in %.2fs (markdown %d bytes; PNGs %s)",
        result.html_uri,
        result.seconds,
        result.markdown_bytes,
        png_bytes,
    )
    if isinstance(lake, LocalLake):
        logger.info("report: open %s in a browser", Path(result.latest_uri).as_uri())
    return result
