"""The Athena stand-in answers as Athena engine v3 does, through the real clients (boto3, PyAthena).

Each test writes Parquet and Glue entries itself and states the expected rows and errors from Athena's
documented behaviour, not from the stand-in's code.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from datetime import date

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.aws

RESULTS = "s3://athena-results/q/"


def _parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


@pytest.fixture
def lake(standin_env):
    """Bucket ``lake`` with table raw.sales (partitioned by year) and raw.groups; returns boto3 clients."""
    s3, glue = boto3.client("s3"), boto3.client("glue")
    for bucket in ("lake", "athena-results"):
        s3.create_bucket(Bucket=bucket)
    glue.create_database(DatabaseInput={"Name": "raw"})
    for year, rows in ((2024, [("a", 10, 1.5), ("b", -7, 2.5)]), (2025, [("a", 3, None)])):
        data = pa.table(
            {
                "grp": [r[0] for r in rows],
                "qty": pa.array([r[1] for r in rows], pa.int32()),
                "price": pa.array([r[2] for r in rows], pa.float64()),
            }
        )
        s3.put_object(Bucket="lake", Key=f"raw/sales/year={year}/part-0.parquet", Body=_parquet(data))
    glue.create_table(
        DatabaseName="raw",
        TableInput={
            "Name": "sales",
            "PartitionKeys": [{"Name": "year", "Type": "int"}],
            "StorageDescriptor": {
                "Columns": [
                    {"Name": "grp", "Type": "string"},
                    {"Name": "qty", "Type": "int"},
                    {"Name": "price", "Type": "double"},
                ],
                "Location": "s3://lake/raw/sales",
            },
        },
    )
    for year in (2024, 2025):
        glue.create_partition(
            DatabaseName="raw",
            TableName="sales",
            PartitionInput={
                "Values": [str(year)],
                "StorageDescriptor": {"Location": f"s3://lake/raw/sales/year={year}"},
            },
        )
    return s3, glue


@pytest.fixture
def cursor(lake, standin_env):
    from pyathena import connect

    return connect(s3_staging_dir=RESULTS, region_name="us-east-1", schema_name="raw", poll_interval=0.05).cursor()


def _error(cursor, sql: str) -> str:
    from pyathena.error import OperationalError

    with pytest.raises(OperationalError) as caught:
        cursor.execute(sql)
    return str(caught.value)


def test_select_reads_partitions_with_typed_results_and_trino_semantics(cursor):
    cursor.execute("SELECT Grp, QTY, price, year, qty / 2 AS half, -7 / 2 AS neg FROM Sales ORDER BY year, grp")
    assert cursor.fetchall() == [("a", 10, 1.5, 2024, 5, -3), ("b", -7, 2.5, 2024, -3, -3), ("a", 3, None, 2025, 1, -3)]
    assert [(d[0], d[1]) for d in cursor.description] == [
        ("grp", "varchar"),
        ("qty", "integer"),
        ("price", "double"),
        ("year", "integer"),
        ("half", "integer"),
        ("neg", "integer"),
    ]
    assert cursor.data_scanned_in_bytes > 0


@pytest.mark.parametrize(
    ("sql", "error"),
    [
        ("SELECT strftime(current_date, '%Y')", "FUNCTION_NOT_FOUND"),
        ("SELECT list_value(1, 2)", "FUNCTION_NOT_FOUND"),
        ("SELECT cast('abc' AS integer)", "INVALID_CAST_ARGUMENT"),
        ("SELECT * FROM no_such_table", "TABLE_NOT_FOUND"),
        ("SELECT no_such_column FROM sales", "COLUMN_NOT_FOUND"),
        ("SELECT * FROM nodb.sales", "SCHEMA_NOT_FOUND"),
        ("SELEC 1", "SYNTAX_ERROR"),
    ],
)
def test_failures_carry_athenas_error_name(cursor, sql, error):
    assert _error(cursor, sql).startswith(error)


def test_try_cast_gives_null_and_date_arithmetic_stays_date(cursor):
    cursor.execute("SELECT try_cast('abc' AS integer), date_add('month', 1, date '2025-01-31')")
    (row,) = cursor.fetchall()
    assert row == (None, date(2025, 2, 28))  # the month's last day; a DATE stays a DATE, as in Trino
    assert cursor.description[1][1] == "date"


def test_a_glue_type_that_does_not_match_the_parquet_file_is_hive_bad_data(lake, cursor):
    s3, glue = lake
    s3.put_object(Bucket="lake", Key="raw/bad/part-0.parquet", Body=_parquet(pa.table({"qty": ["not a number"]})))
    glue.create_table(
        DatabaseName="raw",
        TableInput={
            "Name": "bad",
            "StorageDescriptor": {"Columns": [{"Name": "qty", "Type": "bigint"}], "Location": "s3://lake/raw/bad"},
        },
    )
    assert _error(cursor, "SELECT * FROM bad").startswith("HIVE_BAD_DATA")


def test_ctas_view_insert_and_drop_as_athena_does_them(lake, cursor):
    s3, glue = lake
    cursor.execute(
        "CREATE TABLE raw.totals WITH (format='parquet', external_location='s3://lake/marts/totals', "
        "partitioned_by=ARRAY['year']) AS SELECT grp, sum(qty) AS qty, year FROM sales GROUP BY grp, year"
    )
    table = glue.get_table(DatabaseName="raw", Name="totals")["Table"]
    assert [k["Name"] for k in table["PartitionKeys"]] == ["year"]
    assert [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]] == [
        ("grp", "string"),
        ("qty", "bigint"),
    ]
    parts = glue.get_partitions(DatabaseName="raw", TableName="totals")["Partitions"]
    assert sorted(p["Values"][0] for p in parts) == ["2024", "2025"]
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="lake", Prefix="marts/totals/")["Contents"]}
    assert {k.rsplit("/", 1)[0] for k in keys} == {"marts/totals/year=2024", "marts/totals/year=2025"}
    # a second CTAS onto data already there fails, as Athena refuses a non-empty location
    assert _error(
        cursor, "CREATE TABLE raw.again WITH (external_location='s3://lake/marts/totals') AS SELECT 1 AS x"
    ).startswith("HIVE_PATH_ALREADY_EXISTS")

    cursor.execute("CREATE OR REPLACE VIEW raw.big AS SELECT grp, qty FROM totals WHERE qty > 2")
    view = glue.get_table(DatabaseName="raw", Name="big")["Table"]
    assert view["TableType"] == "VIRTUAL_VIEW" and view["ViewOriginalText"].startswith("/* Presto View: ")
    cursor.execute("INSERT INTO raw.totals (grp, qty, year) VALUES ('c', 100, 2026)")
    cursor.execute("SELECT grp, qty FROM big ORDER BY qty")
    # totals: a/2024 = 10, b/2024 = -7, a/2025 = 3, and the inserted c/2026 = 100
    assert cursor.fetchall() == [("a", 3), ("a", 10), ("c", 100)]
    parts = glue.get_partitions(DatabaseName="raw", TableName="totals")["Partitions"]
    assert sorted(p["Values"][0] for p in parts) == ["2024", "2025", "2026"]

    cursor.execute("DROP TABLE raw.totals")
    assert _error(cursor, "SELECT * FROM big").startswith("TABLE_NOT_FOUND")
    # the two files the CTAS wrote and the one the INSERT added stay: DROP TABLE keeps the data
    assert s3.list_objects_v2(Bucket="lake", Prefix="marts/totals/")["KeyCount"] == 3


def test_results_are_paged_with_labels_and_written_as_csv(cursor, standin_env):
    cursor.execute("SELECT x, cast(x AS varchar) AS s, date '2025-01-01' AS d FROM unnest(sequence(1, 2500)) AS t (x)")
    query_id = cursor.query_id
    athena, s3 = boto3.client("athena"), boto3.client("s3")
    pages = list(athena.get_paginator("get_query_results").paginate(QueryExecutionId=query_id))
    assert len(pages) == 3
    info = pages[0]["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]
    assert [(c["Name"], c["Type"]) for c in info] == [
        ("x", "bigint"),
        ("s", "varchar"),
        ("d", "date"),
    ]  # Trino's sequence is bigint
    rows = [[v.get("VarCharValue") for v in r["Data"]] for p in pages for r in p["ResultSet"]["Rows"]]
    assert rows[0] == ["x", "s", "d"] and len(rows) == 2501 and rows[-1] == ["2500", "2500", "2025-01-01"]
    execution = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
    assert execution["Status"]["State"] == "SUCCEEDED"
    assert execution["EngineVersion"]["EffectiveEngineVersion"] == "Athena engine version 3"
    key = f"q/{query_id}.csv"
    assert execution["ResultConfiguration"]["OutputLocation"] == f"s3://athena-results/{key}"
    written = list(csv.reader(io.StringIO(s3.get_object(Bucket="athena-results", Key=key)["Body"].read().decode())))
    assert written[0] == ["x", "s", "d"] and len(written) == 2501
    assert s3.head_object(Bucket="athena-results", Key=f"{key}.metadata")["ContentLength"] > 0
    assert date.fromisoformat(written[1][2]) == date(2025, 1, 1)


def test_work_group_stop_and_unknown_actions(standin_env, aws_standin):
    athena = boto3.client("athena")
    assert athena.get_work_group(WorkGroup="primary")["WorkGroup"]["State"] == "ENABLED"
    with pytest.raises(athena.exceptions.InvalidRequestException):
        athena.get_work_group(WorkGroup="nope")
    query_id = athena.start_query_execution(QueryString="SELECT 1", ResultConfiguration={"OutputLocation": RESULTS})[
        "QueryExecutionId"
    ]
    athena.stop_query_execution(QueryExecutionId=query_id)
    assert athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]["State"] in {
        "CANCELLED",
        "SUCCEEDED",  # it may have finished before the stop arrived, as on Athena
    }
    with pytest.raises(athena.exceptions.ClientError):
        athena.list_named_queries()
    assert aws_standin.athena.unanswered == {"ListNamedQueries": 1}


def test_the_module_prints_ready_once_it_answers(tmp_path):
    from tasks.core.prefect_server import free_port

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "standins.aws", "--port", str(port)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == f"ready http://127.0.0.1:{port}"
        s3 = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="y",
        )
        s3.create_bucket(Bucket="ready-check")
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["ready-check"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
