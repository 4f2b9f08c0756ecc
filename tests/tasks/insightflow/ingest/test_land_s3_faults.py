"""A persistent S3 fault part-way through re-landing a dataset whose data changed, and the run after it.

moto behind the fault-injecting proxy (real HTTP, the fault on the wire): the source revises six
published months and adds two; after k object writes every further PUT under ``raw/iowrt/`` fails.
That run must fail naming iowrt; the manifest and Glue must still agree on the partition set (the
months written early and the new month are invisible or carry data the next run rewrites); the next
run, with S3 healthy again, must leave S3 objects, manifest hashes and Glue partitions all equal to
what the revised source says, computed here from the source table, not from the lake.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from tasks.insightflow.sample.data import SAMPLE_TABLES, parquet_bytes
from tasks.insightflow.sample.server import sample_server
from tests.support.fault_proxy import FaultProxy, Rule, s3_put

pytestmark = [pytest.mark.aws, pytest.mark.usefixtures("prefect_server")]

K = 7  # writes that succeed before the fault: the six revised months, then the first new one


def _revised_source() -> pa.Table:
    """The published iowrt with its last six months' sales revised (+10%) and two months added."""
    table = SAMPLE_TABLES["iowrt"]()
    dates = table["date"].cast(pa.date32())
    last_six = sorted(set(dates.to_pylist()))[-6:]
    revised = pc.is_in(dates, pa.array(last_six, pa.date32()))
    sales = pc.if_else(revised, pc.multiply(table["sales"].cast(pa.float64()), 1.1), table["sales"].cast(pa.float64()))
    table = table.set_column(table.schema.get_field_index("sales"), "sales", sales)
    latest = table.filter(pc.equal(dates, pa.scalar(last_six[-1], pa.date32())))
    added = [
        latest.set_column(
            latest.schema.get_field_index("date"), "date", pa.array([month] * latest.num_rows, latest["date"].type)
        )
        for month in (datetime(2025, 9, 1), datetime(2025, 10, 1))
    ]
    return pa.concat_tables([table, *added])


def _expected(table: pa.Table) -> dict[str, tuple[int, float]]:
    """Rows and total sales per ``year=/month=`` partition, straight from the source table."""
    out: dict[str, tuple[int, float]] = {}
    for day, sales in zip(table["date"].cast(pa.date32()).to_pylist(), table["sales"].to_pylist(), strict=True):
        key = f"year={day.year:04d}/month={day.month:02d}"
        rows, total = out.get(key, (0, 0.0))
        out[key] = (rows + 1, total + (sales or 0.0))
    return out


def _lake_state(s3, glue) -> tuple[dict, set[str], dict[str, bytes]]:
    manifest = json.loads(s3.get_object(Bucket="insightflow-lake", Key="raw/iowrt/_manifest.json")["Body"].read())
    pages = glue.get_paginator("get_partitions").paginate(DatabaseName="prod_raw", TableName="iowrt")
    catalogued = {"year={}/month={}".format(*p["Values"]) for page in pages for p in page["Partitions"]}
    objects = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="insightflow-lake", Prefix="raw/iowrt/year="):
        for obj in page.get("Contents", []):
            body = s3.get_object(Bucket="insightflow-lake", Key=obj["Key"])["Body"].read()
            objects[obj["Key"].removeprefix("raw/iowrt/").removesuffix("/data.parquet")] = body
    return manifest, catalogued, objects


def test_a_persistent_fault_mid_relanding_fails_the_run_and_the_next_run_repairs_it(
    aws_env, make_bucket, monkeypatch, tmp_path
):
    from blocks import aws
    from blocks.registry import register
    from flows.insightflow import insightflow

    credentials = make_bucket("insightflow-lake").credentials
    s3, glue = credentials.get_client("s3"), credentials.get_client("glue")  # straight to moto, no faults
    server = sample_server()

    def run():
        with server.running():
            return insightflow(
                datasets=["iowrt"],
                target="prod",
                settings={
                    "home": str(tmp_path),
                    "dosm_base_url": server.url(),
                    "datagovmy_base_url": server.url(),
                    "run_dbt": False,
                },
                return_state=True,
            )

    with FaultProxy(aws_env["AWS_ENDPOINT_URL"]) as proxy:
        monkeypatch.setenv("INSIGHTFLOW_AWS_MAX_ATTEMPTS", "2")  # a persistent fault fails within a second
        env = {
            **os.environ,
            "AWS_ENDPOINT_URL": proxy.url,
            "INSIGHTFLOW_LAKE_BUCKET": "insightflow-lake",
            "INSIGHTFLOW_ATHENA_RESULTS_BUCKET": "insightflow-athena-results",
            "INSIGHTFLOW_GLUE_DATABASE": "prod_raw",
        }
        lines, saved = register({"aws": aws.plan}, env)
        assert saved in (0, 4) and not any("skipped" in line for line in lines), lines

        assert run().is_completed()
        before_manifest, before_glue, _ = _lake_state(s3, glue)
        assert before_glue == set(before_manifest["partitions"])

        revised = _revised_source()
        expected = _expected(revised)
        changed = sorted(p for p in expected if expected[p] != _expected(SAMPLE_TABLES["iowrt"]()).get(p))
        assert len(changed) == 8  # six revised months and two new ones
        server.replace("/iowrt/iowrt.parquet", parquet_bytes(revised))
        fault = Rule(s3_put("/raw/iowrt/"), 500, "InternalError", after=K)
        proxy.rules.append(fault)

        state = run()
        assert state.is_failed()
        assert "iowrt" in state.message and "InternalError" in state.message, state.message
        assert fault.seen - fault.failed == K  # exactly K writes got through before the fault
        manifest, catalogued, objects = _lake_state(s3, glue)
        # The manifest was not switched and Glue was not touched: they still agree, on the old set.
        assert manifest["partitions"] == before_manifest["partitions"]
        assert catalogued == before_glue == set(manifest["partitions"])
        # What got through is either invisible (the new month: in S3, in neither manifest nor Glue) or a
        # catalogued month already holding the revised rows, which the next run rewrites and records.
        written_early = set(changed[:K])
        assert written_early - catalogued == {"year=2025/month=09"}
        for partition in written_early:
            assert hashlib.sha256(objects[partition]).hexdigest() != before_manifest["partitions"].get(
                partition, {}
            ).get("sha256")
        assert "year=2025/month=10" not in objects

        proxy.rules.remove(fault)
        assert run().is_completed()
        manifest, catalogued, objects = _lake_state(s3, glue)

    assert set(objects) == catalogued == set(manifest["partitions"]) == set(expected)
    for partition, body in objects.items():
        assert hashlib.sha256(body).hexdigest() == manifest["partitions"][partition]["sha256"]
        table = pq.read_table(pa.BufferReader(body))
        rows, total = expected[partition]
        assert table.num_rows == rows
        assert pc.sum(table["sales"]).as_py() == pytest.approx(total)
