"""The InsightFlow report's prod read: PyAthena through the saved AthenaTarget and AWS credentials blocks, on moto.

moto does not execute SQL: it answers each query with the next result queued through its API. So this
checks the wiring (blocks → connection, schema and work group, typed rows back) and that the SQL the
report sends parses as Trino, the engine behind Athena v3; the numbers are checked on DuckDB elsewhere.
"""

from __future__ import annotations

from datetime import date

import httpx
import pytest
import sqlglot

from tests.support.aws import REGION

pytestmark = [pytest.mark.aws, pytest.mark.usefixtures("prefect_server")]


def _result(columns: list[tuple[str, str]], rows: list[tuple]) -> dict:
    return {
        "column_info": [
            {
                "Name": name,
                "Label": name,
                "Type": kind,
                "Nullable": "NULLABLE",
                "CaseSensitive": False,
                "CatalogName": "hive",
                "SchemaName": "",
                "TableName": "",
                "Precision": 0,
                "Scale": 0,
            }
            for name, kind in columns
        ],
        "rows": [{"Data": [{} if v is None else {"VarCharValue": str(v)} for v in row]} for row in rows],
    }


HEADLINE = [
    ("month_start_date", "date"),
    ("sales_myr_million", "double"),
    ("volume_index", "double"),
    ("avg_ron95_myr_per_litre", "double"),
    ("avg_ron97_myr_per_litre", "double"),
    ("avg_diesel_myr_per_litre", "double"),
    ("ron95_change_mom_pct", "double"),
    ("ron97_change_mom_pct", "double"),
    ("diesel_change_mom_pct", "double"),
    ("fuel_price_weeks", "bigint"),
]
CORRELATION = [
    ("msic_group_code", "varchar"),
    ("msic_group_description", "varchar"),
    ("months_compared", "bigint"),
    ("sales_growth_ron95_change_correlation", "double"),
    ("sales_growth_ron97_change_correlation", "double"),
    ("sales_growth_diesel_change_correlation", "double"),
]
GROUP_SALES = [
    ("msic_group_code", "varchar"),
    ("msic_group_description", "varchar"),
    ("month_start_date", "date"),
    ("sales_myr_million", "double"),
]


def queued_results() -> list[dict]:
    """The four results the report's queries get, in order (moto answers queries from this queue)."""
    return [
        _result(
            HEADLINE,
            [
                ("2024-05-01", 200000.5, 150.0, 2.05, 3.47, 2.15, 0.0, 1.2, 0.0, 4),
                ("2024-06-01", 201000.0, 151.0, 2.05, 3.47, 3.05, 0.0, 0.0, 41.86, 4),
                ("2024-07-01", 203000.0, 152.5, 2.05, 3.47, 3.35, 0.0, 0.0, 9.84, 5),
            ],
        ),
        _result(
            CORRELATION,
            [
                ("471", "Retail sale in non-specialized stores", 3, None, 0.5, -0.25),
                ("473", "Retail sale of automotive fuel", 3, None, None, 0.75),
            ],
        ),
        _result([("month_start_date", "date")], [("2024-07-01",)]),
        _result(
            GROUP_SALES,
            [
                ("471", "Retail sale in non-specialized stores", "2023-07-01", 100.0),
                ("471", "Retail sale in non-specialized stores", "2024-07-01", 110.0),
                ("473", "Retail sale of automotive fuel", "2023-07-01", 50.0),
                ("473", "Retail sale of automotive fuel", "2024-07-01", 45.0),
            ],
        ),
    ]


def test_prod_report_reads_the_marts_from_athena_through_the_blocks(aws_credentials, moto_server):
    from blocks.athena import AthenaTarget
    from tasks.insightflow.report.findings import compute_findings, read_marts
    from tasks.insightflow.report.publish import athena_query

    AthenaTarget(
        region=REGION,
        work_group="primary",
        athena_schema="insightflow_report_test",
        s3_staging_dir="s3://insightflow-athena-results/staging/",
    ).save("report-test-athena", overwrite=True)
    aws_credentials.save("report-test-aws", overwrite=True)
    httpx.post(
        f"{moto_server}/moto-api/static/athena/query-results",
        timeout=10,
        json={"region": REGION, "results": queued_results()},
    ).raise_for_status()

    data = read_marts(athena_query("report-test-athena", "report-test-aws"))

    assert data.headline[1]["month_start_date"] == date(2024, 6, 1)
    assert data.headline[2]["avg_diesel_myr_per_litre"] == 3.35 and data.headline[2]["fuel_price_weeks"] == 5
    assert data.correlations[0]["sales_growth_ron95_change_correlation"] is None
    assert data.latest_group_month == date(2024, 7, 1)
    found = compute_findings(data)
    assert [(c.group_code, c.fuel, c.r) for c in found.strongest] == [
        ("473", "diesel", 0.75),
        ("471", "RON97", 0.5),
        ("471", "diesel", -0.25),
    ]
    assert {g.group_code: round(g.growth_pct, 6) for g in found.growth} == {"471": 10.0, "473": -10.0}
    assert (found.diesel_may_2024, found.diesel_jul_2024) == (2.15, 3.35)

    athena = aws_credentials.get_client("athena")
    ids = athena.list_query_executions()["QueryExecutionIds"]
    executions = [athena.get_query_execution(QueryExecutionId=i)["QueryExecution"] for i in ids]
    assert len(executions) == 4
    for execution in executions:
        assert execution["QueryExecutionContext"]["Database"] == "insightflow_report_test"
        assert execution["WorkGroup"] == "primary"
        sqlglot.parse_one(execution["Query"], read="trino")
    assert any("date '2023-07-01'" in e["Query"] and "date '2024-07-01'" in e["Query"] for e in executions)


REVISIONS = [
    ("month_start_date", "date"),
    ("msic_group_code", "varchar"),
    ("msic_group_description", "varchar"),
    ("previous_sales_myr_million", "double"),
    ("sales_myr_million", "double"),
    ("sales_revision_pct", "double"),
    ("previous_volume_index", "double"),
    ("volume_index", "double"),
    ("seen_at", "timestamp"),
]


def test_prod_report_reads_the_revisions_since_the_previous_report_from_athena(aws_credentials, moto_server):
    from blocks.athena import AthenaTarget
    from tasks.insightflow.report.publish import athena_query
    from tasks.insightflow.report.revisions import read_revisions, render_markdown

    AthenaTarget(
        region=REGION,
        work_group="primary",
        athena_schema="insightflow_revisions_test",
        s3_staging_dir="s3://insightflow-athena-results/staging/",
    ).save("revisions-test-athena", overwrite=True)
    aws_credentials.save("revisions-test-aws", overwrite=True)
    athena = aws_credentials.get_client("athena")
    before = set(athena.list_query_executions()["QueryExecutionIds"])
    queued = [
        _result(
            REVISIONS,
            [
                ("2025-07-01", None, None, 200.0, 201.0, 0.5, 100.0, 100.0, "2025-09-01 05:00:00.000"),
                ("2025-07-01", "471", "Retail sale", 50.0, 48.0, -4.0, 90.0, 91.0, "2025-09-01 05:00:00.000"),
            ],
        ),
        _result([("m", "date")], [("2025-08-01",)]),
        _result(
            [("month_start_date", "date"), ("sales_myr_million", "double"), ("seen_at", "timestamp")],
            [
                ("2025-07-01", 200.0, "2025-08-01 05:00:00.000"),
                ("2025-07-01", 201.0, "2025-09-01 05:00:00.000"),
                ("2025-08-01", 205.0, "2025-09-01 05:00:00.000"),
            ],
        ),
    ]
    httpx.post(
        f"{moto_server}/moto-api/static/athena/query-results", timeout=10, json={"region": REGION, "results": queued}
    ).raise_for_status()

    revisions = read_revisions(athena_query("revisions-test-athena", "revisions-test-aws"), "2025-08-15 00:00:00")

    assert [(c.group_code, c.pct) for c in revisions.changes] == [("471", -4.0), (None, 0.5)]  # largest first
    assert revisions.headline[date(2025, 7, 1)][-1][0] == 201.0 and len(revisions.headline) == 2
    assert "2 published value(s) in 1 month(s) were revised since the previous report" in render_markdown(revisions)
    ids = [i for i in athena.list_query_executions()["QueryExecutionIds"] if i not in before]
    queries = [athena.get_query_execution(QueryExecutionId=i)["QueryExecution"]["Query"] for i in ids]
    assert len(queries) == 3
    for sql in queries:
        sqlglot.parse_one(sql, read="trino", error_level=sqlglot.ErrorLevel.RAISE)
    assert any("seen_at > timestamp '2025-08-15 00:00:00'" in sql for sql in queries)
