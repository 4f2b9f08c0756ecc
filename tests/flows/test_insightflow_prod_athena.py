"""The production flow end to end on the Athena stand-in, twice: fetch → S3 → Glue → dbt on Athena → report.

The first run builds every model on Athena (CTAS, Glue views); the second, after the sample's next
release, runs the incremental ``fct_retail_sales_monthly`` (insert_overwrite of its partitions). After
each, every mart on Athena equals, row for row, the mart the dev target builds on DuckDB from the same
data. Both sides are read here independently of the code under test: the Athena marts as the Parquet
objects under their Glue locations (pyarrow over S3), the dev marts with duckdb.
"""

from __future__ import annotations

import math
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks.core.config import DBT_DIR
from tests.blocks.test_aws import BUCKETS

pytestmark = [pytest.mark.aws, pytest.mark.usefixtures("prefect_server")]

MARTS = sorted(p.stem for p in (DBT_DIR / "insightflow" / "models" / "marts").glob("*.sql"))
SCHEMA = "insightflow"


@pytest.fixture
def standin_blocks(standin_env):
    from prefect_aws import AwsClientParameters, AwsCredentials

    from blocks import aws
    from blocks.registry import register

    creds = AwsCredentials(
        aws_access_key_id=standin_env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=standin_env["AWS_SECRET_ACCESS_KEY"],
        region_name=standin_env["AWS_REGION"],
        aws_client_parameters=AwsClientParameters(endpoint_url=standin_env["AWS_ENDPOINT_URL"]),
    )
    s3 = creds.get_client("s3")
    for bucket in BUCKETS.values():
        s3.create_bucket(Bucket=bucket)
    lines, saved = register({"aws": aws.plan}, {**os.environ, **BUCKETS, "INSIGHTFLOW_GLUE_DATABASE": "prod_raw"})
    assert saved == 4, lines
    return creds


def _athena_mart(creds, name: str) -> list[dict]:
    """A mart's rows as Athena would read them: the Parquet files under its Glue location(s)."""
    glue, s3 = creds.get_client("glue"), creds.get_client("s3")
    table = glue.get_table(DatabaseName=SCHEMA, Name=name)["Table"]
    keys = [k["Name"] for k in table.get("PartitionKeys", [])]
    if keys:
        pages = glue.get_paginator("get_partitions").paginate(DatabaseName=SCHEMA, TableName=name)
        locations = [(p["StorageDescriptor"]["Location"], p["Values"]) for page in pages for p in page["Partitions"]]
    else:
        locations = [(table["StorageDescriptor"]["Location"], [])]
    rows = []
    for location, values in locations:
        bucket, _, prefix = location[5:].partition("/")
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix.rstrip("/") + "/").get("Contents", [])
        for obj in listed:
            data = pq.read_table(pa.BufferReader(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()))
            for row in data.to_pylist():
                rows.append({**row, **{k: int(v) for k, v in zip(keys, values, strict=True)}})
    return rows


def _dev_mart(warehouse: Path, name: str) -> list[dict]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        data = con.sql(f'select * from main."{name}"').to_arrow_table()
    return data.to_pylist()


def _normal(value):
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 6)
    if (
        hasattr(value, "date")
        and callable(value.date)
        and getattr(value, "hour", 0) == 0
        and type(value).__name__ == "datetime"
    ):
        return value.date()  # a date that one engine hands back as midnight
    return value


# When this lake first saw a version: each side's own landing clock, so equal only to the window both
# sides' runs fall in (under load the dev run lands minutes after the prod run).
# (seen_at, first_seen_at, latest_seen_at, version_seen_at, last_revised_seen_at, superseded_at in the
# revisions and vintages marts).
RUN_CLOCK_COLUMNS = {
    "seen_at",
    "first_seen_at",
    "latest_seen_at",
    "version_seen_at",
    "last_revised_seen_at",
    "superseded_at",
}


def _same_rows(athena: list[dict], dev: list[dict], name: str, clock: tuple) -> None:
    assert athena and dev, f"{name}: empty ({len(athena)} on Athena, {len(dev)} on DuckDB)"
    assert set(athena[0]) == set(dev[0]), f"{name}: columns differ: {sorted(set(athena[0]) ^ set(dev[0]))}"
    columns = sorted(dev[0])

    def order(row: list) -> tuple:
        # rows pair up by their data, not by a landing clock that differs between the two sides
        return tuple((v is None, str(v)) for c, v in zip(columns, row, strict=True) if c not in RUN_CLOCK_COLUMNS)

    left = sorted(([_normal(r[c]) for c in columns] for r in athena), key=order)
    right = sorted(([_normal(r[c]) for c in columns] for r in dev), key=order)
    assert len(left) == len(right), f"{name}: {len(left)} rows on Athena, {len(right)} on DuckDB"
    for a, d in zip(left, right, strict=True):
        for column, x, y in zip(columns, a, d, strict=True):
            if column in RUN_CLOCK_COLUMNS and x != y:
                for value in (x, y):
                    assert clock[0] <= value <= clock[1], f"{name}.{column}: {value} outside the runs {clock}"
            elif isinstance(x, float) and isinstance(y, float):
                assert math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-6), f"{name}.{column}: {x} != {y}"
            else:
                assert x == y, f"{name}.{column}: {x!r} (Athena) != {y!r} (DuckDB)\n{a}\n{d}"


# Two prod runs (181 dbt nodes each, one Athena query per node) and two dev runs: ~8 min on an idle
# 2-core machine, up to ~25 min on a loaded one, so past the suite's 900 s default.
@pytest.mark.timeout(2400)
def test_prod_flow_builds_marts_on_athena_equal_to_dev_twice(standin_blocks, aws_standin, tmp_path):
    from flows.insightflow import insightflow

    athena = aws_standin.athena
    started = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=1)
    for release in (0, 1):
        # the dev side sees the same releases in the same order (the revision marts keep every vintage)
        dev_home = tmp_path / "dev"
        state = insightflow(
            target="prod",
            settings={"sample": True, "sample_release": release, "home": str(tmp_path / "prod")},
            return_state=True,
        )
        assert state.is_completed(), state.message
        result = state.result()
        assert result["dbt"] and result["dbt"] != "skipped", result
        assert result["report"], result
        dev = insightflow(
            target="dev", settings={"sample": True, "sample_release": release, "home": str(dev_home)}, return_state=True
        )
        assert dev.is_completed(), dev.message
        clock = (started, datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=1))
        for mart in MARTS:
            _same_rows(_athena_mart(standin_blocks, mart), _dev_mart(dev_home / "warehouse.duckdb", mart), mart, clock)
    assert not athena.unanswered, dict(athena.unanswered)
    failed = [q["execution"] for q in athena.queries.values() if q["execution"]["Status"]["State"] != "SUCCEEDED"]
    assert not failed, [(f["Query"][:200], f["Status"].get("StateChangeReason")) for f in failed]
