"""The insightflow flow with ``target=prod`` and its blocks pointing at moto: S3 lake + Glue catalog.

These runs check landing and cataloguing on plain moto and stop before dbt (``run_dbt=False``); the
prod flow with dbt on Athena runs on the Athena stand-in in test_insightflow_prod_athena.py.
"""

from __future__ import annotations

import os
from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks.insightflow.contracts import DATASETS
from tasks.insightflow.sample.data import SAMPLE_TABLES, parquet_bytes
from tasks.insightflow.sample.server import sample_server
from tests.blocks.test_aws import BUCKETS
from tests.support.prefect_runs import asset_events, asset_graph

pytestmark = [pytest.mark.aws, pytest.mark.usefixtures("prefect_server")]


@pytest.fixture
def prod_blocks(aws_env, make_bucket):
    from blocks import aws
    from blocks.registry import register

    make_bucket("insightflow-lake")
    lines, saved = register({"aws": aws.plan}, {**os.environ, **BUCKETS, "INSIGHTFLOW_GLUE_DATABASE": "prod_raw"})
    assert saved == 4, lines
    return make_bucket("insightflow-lake").credentials


def _glue_partitions(glue, table: str) -> set[str]:
    pages = glue.get_paginator("get_partitions").paginate(DatabaseName="prod_raw", TableName=table)
    return {f"year={p['Values'][0]}/month={p['Values'][1]}" for page in pages for p in page["Partitions"]}


def test_prod_flow_lands_in_s3_and_registers_exactly_the_written_partitions(prod_blocks, tmp_path):
    from flows.insightflow import insightflow
    from tasks.insightflow.warehouse.athena import load_dbt_prod_env

    s3, glue = prod_blocks.get_client("s3"), prod_blocks.get_client("glue")
    server = sample_server()
    with server.running():
        state = insightflow(
            target="prod",
            settings={
                "home": str(tmp_path),
                "dosm_base_url": server.url(),
                "datagovmy_base_url": server.url(),
                "run_dbt": False,
            },
            return_state=True,
        )
    assert state.is_completed(), state.message

    keys = {
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket="insightflow-lake")
        for o in page.get("Contents", [])
    }
    for name, build in SAMPLE_TABLES.items():
        table = build()
        if DATASETS[name].partition_by_date:
            months = {f"year={d.year:04d}/month={d.month:02d}" for d in table["date"].cast(pa.date32()).to_pylist()}
            assert {k for k in keys if k.startswith(f"raw/{name}/year=")} == {
                f"raw/{name}/{m}/data.parquet" for m in months
            }
            assert _glue_partitions(glue, name) == months
        else:
            assert f"raw/{name}/data.parquet" in keys
    assert not (tmp_path / "lake").exists(), "prod must not write the local lake"
    columns = [
        c["Name"]
        for c in glue.get_table(DatabaseName="prod_raw", Name="iowrt_3d")["Table"]["StorageDescriptor"]["Columns"]
    ]
    assert columns == ["series", "ymd_date", "group_code", "sales", "volume"]

    # Each dataset's source URL → its S3 dataset, one key per dataset, with what landing it did.
    lake_keys = {name: f"s3://insightflow-lake/raw/{name}" for name in DATASETS}
    events = asset_events(state.state_details.flow_run_id, expect=tuple(lake_keys.values()))
    assert asset_graph(events) == {
        lake_keys[name]: {f"http://127.0.0.1{dataset.path}"} for name, dataset in DATASETS.items()
    }
    for event in events:
        if event["event"].endswith("succeeded"):
            name = event["resource"]["prefect.resource.id"].rsplit("/", 1)[-1]
            objects = [k for k in keys if k.startswith(f"raw/{name}/") and k.endswith(".parquet")]
            assert event["payload"]["rows"] == SAMPLE_TABLES[name]().num_rows
            assert event["payload"]["partitions_written"] == len(objects)

    # The source publishes one more month: exactly one new object and one new Glue partition.
    published = SAMPLE_TABLES["iowrt_3d"]()
    extra = published.filter(pa.compute.equal(published["date"], pa.scalar(date(2025, 8, 1))))
    extra = extra.set_column(1, "date", pa.array([date(2025, 9, 1)] * extra.num_rows, pa.date32()))
    before = _glue_partitions(glue, "iowrt_3d")
    server.replace("/iowrt/iowrt_3d.parquet", parquet_bytes(pa.concat_tables([published, extra])))
    with server.running():
        state = insightflow(
            target="prod",
            settings={
                "home": str(tmp_path),
                "dosm_base_url": server.url(),
                "datagovmy_base_url": server.url(),
                "run_dbt": False,
            },
            return_state=True,
        )
    assert state.is_completed(), state.message
    assert _glue_partitions(glue, "iowrt_3d") - before == {"year=2025/month=09"}
    obj = s3.get_object(Bucket="insightflow-lake", Key="raw/iowrt_3d/year=2025/month=09/data.parquet")
    assert pq.read_table(pa.BufferReader(obj["Body"].read())).num_rows == extra.num_rows
    assert state.result()["datasets"]["iowrt"] == "unchanged"
    # ...and only that dataset is materialized again, under the same key
    events = asset_events(state.state_details.flow_run_id, expect=(lake_keys["iowrt_3d"],))
    (event,) = [e for e in events if e["event"].startswith("prefect.asset.materialization.")]
    assert event["resource"]["prefect.resource.id"] == lake_keys["iowrt_3d"]
    assert event["payload"]["partitions_written"] == 1 and event["payload"]["partitions_unchanged"] == len(before)

    # dbt's prod sources take exactly these keys (the Athena build runs in test_insightflow_prod_athena.py)
    from tasks.core.lake import open_lake
    from tasks.insightflow.warehouse.build import dbt_source_keys

    assert sorted(dbt_source_keys(open_lake("prod", str(tmp_path), "insightflow-lake")).values()) == sorted(
        lake_keys.values()
    )

    env = load_dbt_prod_env()
    assert env["INSIGHTFLOW_GLUE_DATABASE"] == "prod_raw"
