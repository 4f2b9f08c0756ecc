"""What a production run costs on Athena: queries dbt sends, bytes scanned, and what Athena would bill.

    python bench/athena_queries.py

Runs the production flow (``target=prod``, the offline sample) twice on the Athena stand-in
(standins/aws: Athena over DuckDB, S3 and Glue by moto, one loopback endpoint) with a throwaway Prefect
server: release 0 builds everything, release 1 (one new month, three revised) runs the incremental
``fct_retail_sales_monthly``. For each run it reads every query back through the Athena API
(ListQueryExecutions, BatchGetQueryExecution) and splits them by who sent them: ``dbt build`` (dbt's
query comment names a model, test or unit test, or dbt-athena's uncommented DDL), ``dbt source
freshness`` (a source node) and the report (the rest). Bytes scanned are the stand-in's measurement: the compressed Parquet column
chunks of the columns a query names, over every file it reads (no partition pruning, see docs/aws.md),
so an upper bound of Athena's. The bill applies Athena's rule: $5 per TB scanned, each query rounded
up to at least 10 MB; DDL (views, DROP, ALTER, CREATE SCHEMA) and failed queries are free.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import CouldNotMeasure, Report, prefect_server, workdir

MIN_BILLED = 10 * 1024 * 1024
PRICE_PER_TB = 5.0
TB = 1024**4
_NODE = re.compile(r'"node_id":\s*"([^"]+)"')
BUCKETS = {"INSIGHTFLOW_LAKE_BUCKET": "insightflow-lake", "INSIGHTFLOW_ATHENA_RESULTS_BUCKET": "insightflow-athena"}


def sender(execution: dict) -> str:
    """Who sent a query: dbt's comment names its node; dbt-athena's own DDL (``ALTER TABLE ... SET
    TBLPROPERTIES`` after each table) carries no comment, and the report never sends DDL."""
    sql = execution["Query"]
    node = _NODE.search(sql)
    if '"app": "dbt"' not in sql and not node:
        return "dbt build" if execution["StatementType"] == "DDL" else "report"
    return "dbt source freshness" if node and node.group(1).startswith("source.") else "dbt build"


def billed(execution: dict) -> int:
    """Bytes Athena bills a query for: 0 when free (DDL other than CTAS, failed), else at least 10 MB."""
    if execution["Status"]["State"] != "SUCCEEDED":
        return 0
    sql = re.sub(r"--[^\n]*\n|/\*.*?\*/", "", execution["Query"], flags=re.S).strip().lower()
    if execution["StatementType"] == "DDL" and not re.match(r"create\s+table\b.*\bas\b", sql, re.S):
        return 0
    return max(MIN_BILLED, execution["Statistics"]["DataScannedInBytes"])


def executions(athena) -> dict[str, dict]:
    ids = [i for page in athena.get_paginator("list_query_executions").paginate() for i in page["QueryExecutionIds"]]
    found = {}
    for start in range(0, len(ids), 50):
        for e in athena.batch_get_query_execution(QueryExecutionIds=ids[start : start + 50])["QueryExecutions"]:
            found[e["QueryExecutionId"]] = e
    return found


def run_figures(report: Report, label: str, queries: list[dict], seconds: float) -> dict:
    by_sender: dict[str, list[dict]] = {}
    for q in queries:
        by_sender.setdefault(sender(q), []).append(q)
    figures = {}
    for who in ("dbt build", "dbt source freshness", "report"):
        mine = by_sender.get(who, [])
        scanned = sum(q["Statistics"]["DataScannedInBytes"] for q in mine)
        bill = sum(billed(q) for q in mine)
        report.figure(f"{label}: {who} queries", len(mine), note=f"{sum(1 for q in mine if billed(q))} billable")
        report.figure(f"{label}: {who} bytes scanned", f"{scanned / 1024:,.0f}", "KiB")
        report.figure(f"{label}: {who} billed as", f"{bill / 1024**2:,.0f} MiB = ${bill / TB * PRICE_PER_TB:.4f}")
        figures[who] = {"queries": len(mine), "scanned": scanned, "billed": bill}
    failed = [q for q in queries if q["Status"]["State"] != "SUCCEEDED"]
    report.figure(f"{label}: failed queries", len(failed), target="0", met=not failed)
    report.figure(f"{label}: flow wall time", seconds, "s", note="on the stand-in: not Athena's latency")
    return figures


def main() -> int:
    report = Report("Athena queries per production run (stand-in)")
    try:
        with workdir("athena-bench-") as root, prefect_server(root / "server"):
            from standins.aws import AwsStandIn

            standin = AwsStandIn().start()
            try:
                os.environ.update(
                    {
                        "AWS_ENDPOINT_URL": standin.url,
                        "AWS_ACCESS_KEY_ID": "bench",
                        "AWS_SECRET_ACCESS_KEY": "bench",
                        "AWS_DEFAULT_REGION": "us-east-1",
                        "AWS_REGION": "us-east-1",
                        **BUCKETS,
                    }
                )
                import boto3

                from blocks import aws
                from blocks.registry import register
                from flows.insightflow import insightflow

                for bucket in BUCKETS.values():
                    boto3.client("s3").create_bucket(Bucket=bucket)
                lines, saved = register({"aws": aws.plan}, dict(os.environ))
                if saved != 4:
                    raise CouldNotMeasure("; ".join(lines))
                athena = boto3.client("athena")
                seen: set[str] = set()
                results = {}
                for release, label in ((0, "first run"), (1, "incremental run")):
                    started = time.perf_counter()
                    state = insightflow(
                        target="prod",
                        settings={"sample": True, "sample_release": release, "home": str(root / "home")},
                        return_state=True,
                    )
                    seconds = time.perf_counter() - started
                    if not state.is_completed():
                        raise CouldNotMeasure(f"{label}: {state.message}")
                    every = executions(athena)
                    new = [e for i, e in every.items() if i not in seen]
                    seen |= set(every)
                    results[label] = run_figures(report, label, new, seconds)
                calls = standin.athena.calls
                report.figure("Athena API actions received", ", ".join(f"{k} {v}" for k, v in sorted(calls.items())))
                unanswered = dict(standin.athena.unanswered)
                report.figure("Athena API actions not answered", str(unanswered or 0), target="0", met=not unanswered)
                print(json.dumps(results))
            finally:
                standin.stop()
    except CouldNotMeasure as exc:
        print(f"could not measure: {exc}", file=sys.stderr)
        return 1
    return 0 if not report.missed else 1


if __name__ == "__main__":
    sys.exit(main())
