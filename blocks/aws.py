"""The ``aws`` block group: AWS credentials, the lake and Athena-results buckets, and the Athena target.

Credentials, in order of preference for a deployed flow:
- ``INSIGHTFLOW_AWS_AUTH=default`` (or no keys and no profile set): the block stores only the region and
  boto3's default chain supplies credentials at run time (the ECS task role, an instance profile).
  Keys that happen to be exported on the machine running the registration are then NOT stored.
- ``AWS_PROFILE``: a named profile from ~/.aws (a laptop).
- ``AWS_ACCESS_KEY_ID`` + ``AWS_SECRET_ACCESS_KEY`` (+ ``AWS_SESSION_TOKEN``): stored in the block;
  the secret is a ``SecretStr``. Temporary (session) keys expire, so prefer a role for anything scheduled.
``AWS_ENDPOINT_URL`` points every client at an S3/Glue stand-in (moto, localstack).
"""

from __future__ import annotations

from collections.abc import Mapping

from blocks import names
from blocks.registry import BlockPlan, GroupPlan, require
from tasks.core.aws import client_config

GROUP = "aws"
CREDENTIALS_BLOCK = names.AWS_CREDENTIALS
LAKE_BLOCK = names.LAKE
ATHENA_RESULTS_BLOCK = names.ATHENA_RESULTS
ATHENA_BLOCK = names.ATHENA
AUTH_MODES = ("auto", "keys", "profile", "default")

HINT = (
    "credentials come from AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or the task role "
    "(INSIGHTFLOW_AWS_AUTH=default); AWS_DEFAULT_REGION works in place of AWS_REGION; see docs/aws.md"
)


def _auth_mode(env: Mapping[str, str]) -> str:
    mode = (env.get("INSIGHTFLOW_AWS_AUTH") or "auto").strip().lower()
    if mode not in AUTH_MODES:
        raise ValueError(f"INSIGHTFLOW_AWS_AUTH must be one of {', '.join(AUTH_MODES)}, not {mode!r}")
    if mode == "auto":
        if env.get("AWS_ACCESS_KEY_ID") or env.get("AWS_SECRET_ACCESS_KEY"):
            return "keys"
        return "profile" if env.get("AWS_PROFILE") else "default"
    return mode


def _missing(env: Mapping[str, str], mode: str) -> list[str]:
    missing = [] if (env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")) else ["AWS_REGION"]
    if mode == "keys":
        missing += require(env, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    elif mode == "profile":
        missing += require(env, "AWS_PROFILE")
    return missing + require(env, "INSIGHTFLOW_LAKE_BUCKET", "INSIGHTFLOW_ATHENA_RESULTS_BUCKET")


def _folder(value: str | None) -> str:
    return (value or "").strip("/")


def _s3_dir(bucket: str, *parts: str) -> str:
    path = "/".join(p for p in parts if p)
    return f"s3://{bucket}/{path}/" if path else f"s3://{bucket}/"


def plan(env: Mapping[str, str]) -> GroupPlan:
    """The aws group's blocks from the environment, or the variables still missing."""
    mode = _auth_mode(env)
    missing = _missing(env, mode)
    if missing:
        return GroupPlan(GROUP, missing=missing, hint=HINT)

    from prefect_aws import AwsClientParameters, AwsCredentials
    from prefect_aws.s3 import S3Bucket

    from blocks.athena import AthenaTarget

    region = env.get("AWS_REGION") or env["AWS_DEFAULT_REGION"]
    # The clients' retry policy is stated in the block (prefect-aws's own field), see tasks/core/aws.py.
    client_parameters = AwsClientParameters(endpoint_url=env.get("AWS_ENDPOINT_URL") or None, config=client_config(env))
    credentials = AwsCredentials(
        region_name=region,
        aws_client_parameters=client_parameters,
        **(
            {
                "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
                "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
                "aws_session_token": env.get("AWS_SESSION_TOKEN") or None,
            }
            if mode == "keys"
            else {"profile_name": env["AWS_PROFILE"]}
            if mode == "profile"
            else {}
        ),
    )
    lake_bucket, lake_folder = env["INSIGHTFLOW_LAKE_BUCKET"], _folder(env.get("INSIGHTFLOW_LAKE_PREFIX"))
    results_bucket, results_folder = (
        env["INSIGHTFLOW_ATHENA_RESULTS_BUCKET"],
        _folder(env.get("INSIGHTFLOW_ATHENA_RESULTS_PREFIX")),
    )
    defaults = AthenaTarget.model_fields
    target = AthenaTarget(
        region=region,
        work_group=env.get("INSIGHTFLOW_ATHENA_WORK_GROUP") or defaults["work_group"].default,
        glue_database=env.get("INSIGHTFLOW_GLUE_DATABASE") or defaults["glue_database"].default,
        athena_schema=env.get("INSIGHTFLOW_ATHENA_SCHEMA") or defaults["athena_schema"].default,
        s3_staging_dir=_s3_dir(results_bucket, results_folder, "staging"),
        s3_data_dir=_s3_dir(lake_bucket, lake_folder, "dbt"),
        crawler_name=env.get("INSIGHTFLOW_GLUE_CRAWLER") or None,
    )
    return GroupPlan(
        GROUP,
        blocks=[
            BlockPlan(CREDENTIALS_BLOCK, credentials),
            BlockPlan(
                LAKE_BLOCK, S3Bucket(bucket_name=lake_bucket, bucket_folder=lake_folder, credentials=credentials)
            ),
            BlockPlan(
                ATHENA_RESULTS_BLOCK,
                S3Bucket(bucket_name=results_bucket, bucket_folder=results_folder, credentials=credentials),
            ),
            BlockPlan(ATHENA_BLOCK, target),
        ],
    )
