"""The aws block group: what it plans from the environment, and `python -m blocks register --only aws` for real."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from blocks import aws
from tests.support import REPO_ROOT
from tests.support.aws import ACCESS_KEY_ID, SECRET_ACCESS_KEY

pytestmark = pytest.mark.aws

SESSION_TOKEN = "insightflow-test-session-token-51d2"
BUCKETS = {"INSIGHTFLOW_LAKE_BUCKET": "insightflow-lake", "INSIGHTFLOW_ATHENA_RESULTS_BUCKET": "insightflow-athena"}
ALL_BLOCKS = [
    ("aws-credentials", "insightflow-aws"),
    ("s3-bucket", "insightflow-lake"),
    ("s3-bucket", "insightflow-athena-results"),
    ("insightflow-athena-target", "insightflow-athena"),
]


def planned(env: dict[str, str]) -> dict:
    return {item.name: item.block for item in aws.plan(env).blocks}


def test_with_no_aws_settings_the_plan_names_every_missing_variable():
    plan = aws.plan({})
    assert plan.missing == ["AWS_REGION", "INSIGHTFLOW_LAKE_BUCKET", "INSIGHTFLOW_ATHENA_RESULTS_BUCKET"]
    assert "AWS_ACCESS_KEY_ID" in plan.hint and "INSIGHTFLOW_AWS_AUTH=default" in plan.hint


def test_half_a_key_pair_is_reported_missing_not_silently_dropped():
    plan = aws.plan({"AWS_DEFAULT_REGION": "ap-southeast-1", "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID, **BUCKETS})
    assert plan.missing == ["AWS_SECRET_ACCESS_KEY"]


def test_region_only_plans_credentials_from_the_task_role():
    blocks = planned({"AWS_REGION": "ap-southeast-1", **BUCKETS})
    credentials = blocks["insightflow-aws"]
    assert credentials.region_name == "ap-southeast-1"
    assert (credentials.aws_access_key_id, credentials.aws_secret_access_key, credentials.profile_name) == (
        None,
        None,
        None,
    )


def test_auth_default_never_stores_keys_exported_on_the_registering_machine():
    env = {
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "INSIGHTFLOW_AWS_AUTH": "default",
        **BUCKETS,
    }
    assert planned(env)["insightflow-aws"].aws_access_key_id is None


def test_keys_profile_prefix_and_athena_settings_come_from_the_environment():
    env = {
        "AWS_DEFAULT_REGION": "ap-southeast-5",
        "AWS_PROFILE": "insightflow",
        "INSIGHTFLOW_LAKE_PREFIX": "/prod/",
        "INSIGHTFLOW_ATHENA_RESULTS_PREFIX": "athena",
        "INSIGHTFLOW_GLUE_CRAWLER": "insightflow-raw",
        "INSIGHTFLOW_ATHENA_WORK_GROUP": "insightflow",
        **BUCKETS,
    }
    blocks = planned(env)
    assert blocks["insightflow-aws"].profile_name == "insightflow"
    assert blocks["insightflow-lake"].bucket_folder == "prod"
    target = blocks["insightflow-athena"]
    assert (target.region, target.work_group, target.crawler_name) == (
        "ap-southeast-5",
        "insightflow",
        "insightflow-raw",
    )
    assert target.s3_staging_dir == "s3://insightflow-athena/athena/staging/"
    assert target.s3_data_dir == "s3://insightflow-lake/prod/dbt/"
    assert (target.glue_database, target.athena_schema) == ("insightflow_raw", "insightflow")


def register(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "blocks", "register", "--only", "aws"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def stored_blocks() -> dict:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return {
            name: (doc.id, doc.data)
            for slug, name in ALL_BLOCKS
            for doc in [client.read_block_document_by_name(name, slug, include_secrets=True)]
        }


def delete_stored_blocks() -> None:
    """Start from no aws blocks: other tests on the session's server (in this worker) may have saved them."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        for slug, name in ALL_BLOCKS:
            try:
                client.delete_block_document(client.read_block_document_by_name(name, slug).id)
            except ObjectNotFound:
                pass


def test_register_twice_leaves_the_same_blocks_and_prints_no_secret(prefect_server, aws_env, make_bucket):
    make_bucket("insightflow-lake")
    delete_stored_blocks()
    env = {**os.environ, **BUCKETS, "AWS_SESSION_TOKEN": SESSION_TOKEN, "INSIGHTFLOW_LAKE_PREFIX": "lake"}

    first = register(env)
    assert first.returncode == 0, first.stderr
    after_first = stored_blocks()
    second = register(env)
    assert second.returncode == 0, second.stderr

    assert stored_blocks() == after_first
    assert "insightflow-aws: created" in first.stdout
    assert second.stdout.count(": unchanged") == 4, second.stdout
    for output in (first.stdout, first.stderr, second.stdout, second.stderr):
        assert SECRET_ACCESS_KEY not in output and SESSION_TOKEN not in output

    # The saved blocks are the ones the prod flow opens.
    from tasks.core.lake import open_lake
    from tasks.insightflow.warehouse.athena import load_dbt_prod_env

    lake = open_lake("prod")
    lake.write("raw/iowrt/_manifest.json", b"{}")
    assert lake.uri("raw/iowrt/_manifest.json") == "s3://insightflow-lake/lake/raw/iowrt/_manifest.json"
    assert lake.list("raw/iowrt") == ["raw/iowrt/_manifest.json"]
    dbt_env = load_dbt_prod_env()
    assert dbt_env["AWS_SECRET_ACCESS_KEY"] == SECRET_ACCESS_KEY and dbt_env["AWS_SESSION_TOKEN"] == SESSION_TOKEN
    assert dbt_env["INSIGHTFLOW_ATHENA_S3_DATA_DIR"] == "s3://insightflow-lake/lake/dbt/"


def test_register_without_aws_settings_explains_what_is_missing(prefect_server):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "INSIGHTFLOW_"))}

    result = register(env)

    assert result.returncode == 2
    assert "[aws] skipped: set AWS_REGION, INSIGHTFLOW_LAKE_BUCKET, INSIGHTFLOW_ATHENA_RESULTS_BUCKET" in result.stdout
    assert "No block was registered" in result.stderr


def test_open_lake_names_the_registration_command_when_the_block_is_missing(prefect_server):
    from tasks.core.lake import open_lake

    with pytest.raises(ValueError, match="python -m blocks register --only aws"):
        open_lake("prod", lake_block="no-such-lake")


def test_the_catalog_task_works_from_the_saved_blocks_inside_a_flow(prefect_server, aws_env, make_bucket):
    from prefect import flow

    from blocks.registry import register as register_in_process
    from tasks.core.lake import open_lake
    from tasks.insightflow.catalog.update import update_catalog
    from tasks.insightflow.contracts import IOWRT
    from tasks.insightflow.ingest.land import land
    from tests.tasks.insightflow.catalog.test_glue import fetched, iowrt_rows

    make_bucket("insightflow-lake")
    register_in_process({"aws": aws.plan}, {**os.environ, **BUCKETS, "INSIGHTFLOW_GLUE_DATABASE": "flow_raw"})

    @flow
    def land_and_catalog():
        lake = open_lake("prod")
        result = land(lake, IOWRT, iowrt_rows([(2024, 1)]), fetched("iowrt"))
        return update_catalog([result], lake)

    (outcome,) = land_and_catalog()

    assert (outcome.table_action, outcome.partitions_created) == ("created", ["year=2024/month=01"])
    glue = make_bucket().credentials.get_client("glue")
    assert glue.get_table(DatabaseName="flow_raw", Name="iowrt")["Table"]["StorageDescriptor"]["Location"] == (
        "s3://insightflow-lake/raw/iowrt/"
    )
