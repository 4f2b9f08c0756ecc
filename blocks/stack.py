"""The ``aws`` group's settings read from InsightFlow's CloudFormation stack (deploy/stack.py made it).

``python -m blocks register --from-stack insightflow`` takes the bucket names, folders, Glue
databases, work group, crawler and region from the stack's outputs instead of the environment, so
nothing the stack created is typed again. Credentials default to the ECS task role
(``INSIGHTFLOW_AWS_AUTH=default``): the admin keys that ran the command are never stored in a block.
"""

from __future__ import annotations

from collections.abc import Mapping

# Stack output -> the variable blocks/aws.py reads (deploy/cloudformation/generate.py's OUTPUTS).
OUTPUT_VARIABLES = {
    "Region": "AWS_REGION",
    "LakeBucket": "INSIGHTFLOW_LAKE_BUCKET",
    "LakePrefix": "INSIGHTFLOW_LAKE_PREFIX",
    "AthenaResultsBucket": "INSIGHTFLOW_ATHENA_RESULTS_BUCKET",
    "AthenaResultsPrefix": "INSIGHTFLOW_ATHENA_RESULTS_PREFIX",
    "GlueDatabase": "INSIGHTFLOW_GLUE_DATABASE",
    "AthenaSchema": "INSIGHTFLOW_ATHENA_SCHEMA",
    "AthenaWorkGroup": "INSIGHTFLOW_ATHENA_WORK_GROUP",
    "GlueCrawler": "INSIGHTFLOW_GLUE_CRAWLER",
}
REQUIRED = ("Region", "LakeBucket", "AthenaResultsBucket", "GlueDatabase", "AthenaSchema", "AthenaWorkGroup")


class StackOutputsError(RuntimeError):
    """The stack is missing, unfinished or lacks an output the blocks need."""


def stack_outputs(name: str, env: Mapping[str, str]) -> dict[str, str]:
    """The stack's outputs, read with the region, endpoint and keys of ``env`` (else boto3's own credential chain)."""
    import boto3
    from botocore.exceptions import ClientError

    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None
    keys = {
        "aws_access_key_id": env.get("AWS_ACCESS_KEY_ID") or None,
        "aws_secret_access_key": env.get("AWS_SECRET_ACCESS_KEY") or None,
        "aws_session_token": env.get("AWS_SESSION_TOKEN") or None,
    }
    client = boto3.client(
        "cloudformation",
        region_name=region,
        endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
        **(keys if keys["aws_access_key_id"] else {}),  # else boto3's chain: profile, OIDC web identity, role
    )
    try:
        stack = client.describe_stacks(StackName=name)["Stacks"][0]
    except ClientError as exc:
        raise StackOutputsError(f"cannot read stack {name}: {exc}") from exc
    if not stack["StackStatus"].endswith("_COMPLETE") or stack["StackStatus"].startswith(("DELETE", "ROLLBACK")):
        raise StackOutputsError(f"stack {name} is {stack['StackStatus']}; run python deploy/stack.py apply")
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs") or []}


def env_from_stack(name: str, env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with the aws group's settings replaced by the stack's outputs (and the task role as credentials)."""
    values = stack_outputs(name, env)
    missing = [key for key in REQUIRED if not values.get(key)]
    if missing:
        raise StackOutputsError(
            f"stack {name} has no output {', '.join(missing)}: update it with deploy/stack.py apply"
        )
    merged = dict(env)
    for output, variable in OUTPUT_VARIABLES.items():
        merged[variable] = values.get(output, "")
    merged.setdefault("INSIGHTFLOW_AWS_AUTH", "default")
    return merged
