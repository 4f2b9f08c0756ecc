"""dbt's prod (Athena) environment: every name profiles.yml and the sources read, from the blocks."""

from __future__ import annotations

import re

import pytest
from prefect_aws import AwsClientParameters, AwsCredentials

from blocks.athena import AthenaTarget
from tasks.core.config import DBT_DIR
from tasks.insightflow.warehouse.athena import PROD_TARGET_VARS, PROFILES_PATH, dbt_prod_env, profile_env_vars

pytestmark = pytest.mark.aws

TARGET = AthenaTarget(
    region="ap-southeast-5",
    work_group="insightflow",
    glue_database="insightflow_raw",
    athena_schema="insightflow",
    s3_staging_dir="s3://results/staging/",
    s3_data_dir="s3://lake/dbt/",
)


def test_dbt_prod_env_carries_the_athena_settings_and_stored_keys():
    credentials = AwsCredentials(
        aws_access_key_id="AKIAEXAMPLE",
        aws_secret_access_key="s3cr3t",
        aws_session_token="tok",
        region_name="us-east-1",
    )

    env = dbt_prod_env(TARGET, credentials)

    assert env == {
        "INSIGHTFLOW_ATHENA_S3_STAGING_DIR": "s3://results/staging/",
        "INSIGHTFLOW_ATHENA_S3_DATA_DIR": "s3://lake/dbt/",
        "INSIGHTFLOW_ATHENA_SCHEMA": "insightflow",
        "INSIGHTFLOW_ATHENA_WORK_GROUP": "insightflow",
        "INSIGHTFLOW_GLUE_DATABASE": "insightflow_raw",
        # Athena's region wins over the credentials block's default region.
        "AWS_DEFAULT_REGION": "ap-southeast-5",
        "AWS_REGION": "ap-southeast-5",
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "s3cr3t",
        "AWS_SESSION_TOKEN": "tok",
    }


@pytest.mark.parametrize(
    ("credentials", "expected"),
    [
        (AwsCredentials(region_name="us-east-1"), {}),  # task role: the subprocess uses the same default chain
        (AwsCredentials(profile_name="insightflow"), {"AWS_PROFILE": "insightflow"}),
        (
            AwsCredentials(aws_client_parameters=AwsClientParameters(endpoint_url="http://127.0.0.1:5000")),
            {"AWS_ENDPOINT_URL": "http://127.0.0.1:5000"},
        ),
    ],
)
def test_dbt_prod_env_passes_no_keys_the_block_does_not_hold(credentials, expected):
    env = dbt_prod_env(TARGET, credentials)
    aws = {k: v for k, v in env.items() if k.startswith("AWS_") and k not in ("AWS_REGION", "AWS_DEFAULT_REGION")}
    assert aws == expected


@pytest.mark.skipif(not PROFILES_PATH.exists(), reason="dbt/insightflow/profiles.yml not written yet")
def test_every_insightflow_variable_dbt_reads_on_athena_is_provided_and_nothing_else():
    sources = {
        name
        for path in (DBT_DIR / "insightflow" / "models").rglob("_*__sources.yml")
        for line in path.read_text().splitlines()
        if line.strip().startswith("schema:")
        for name in re.findall(r"env_var\('([A-Z0-9_]+)'", line)
    }
    prod = profile_env_vars(PROFILES_PATH, "prod")
    read_on_athena = {n for n in prod | sources if n.startswith("INSIGHTFLOW_")}

    assert read_on_athena == set(PROD_TARGET_VARS)
    assert prod & {"AWS_DEFAULT_REGION", "AWS_REGION"}, "the prod target should take its region from AWS_DEFAULT_REGION"
