"""The CloudFormation stack on moto: the two admin commands, what moto creates, and the prod flow as the stack's task role.

One moto server of its own with IAM enforcement on (tests/support/moto_cfn_server.py: moto plus the one
fix that makes a change set's outputs visible). An admin user runs ``python deploy/stack.py apply``
twice (the second changes nothing) and ``python -m blocks register --from-stack``; then the prod flow
runs on the stack's buckets and Glue database with the credentials of the stack's task role and is
denied outside them; deleting the stack leaves the lake.

moto 5.2.5 creates S3 buckets (name, encryption), IAM roles (trust and inline policies), the ECR
repository (name), the ECS cluster and the log group (retention) from a template. It skips, while
still reporting CREATE_COMPLETE, ``SKIPPED_BY_MOTO`` below and ignores the bucket properties and ECR
settings in ``IGNORED_BY_MOTO``: ``test_what_moto_skips_or_ignores_is_absent_there_and_checked_in_the_template``
proves moto still skips them (so this list stays true) and checks those parts of the template statically.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.deploy.cloudformation.test_generate import TEMPLATE, check_skipped_resources, resolve_template
from tests.support import iam

pytestmark = [pytest.mark.aws, pytest.mark.usefixtures("prefect_server")]

REPO = TEMPLATE.parents[2]
STACK = "insightflow-test"
LAKE, RESULTS, OTHER = "acme-insightflow-lake", "acme-insightflow-results", "someone-elses-bucket"
PARAMETERS = {
    "GlueDatabaseName": "prod_raw",
    "GlueCrawlerName": "insightflow-raw",
    "SnowflakeIamUserArn": "arn:aws:iam::999999999999:user/snowflake-integration",
    "SnowflakeExternalId": "ACME_SFCRole=2_abc",
    "GitHubRepository": "acme/insightflow",
}
SKIPPED_BY_MOTO = {
    "AWS::S3::BucketPolicy": ("LakeBucketPolicy", "AthenaResultsBucketPolicy"),
    "AWS::Glue::Database": ("GlueRawDatabase", "GlueDbtDatabase"),
    "AWS::Athena::WorkGroup": ("AthenaWorkGroup",),
    "AWS::SecretsManager::Secret": ("PrefectApiSecret",),
    "AWS::Glue::Crawler": ("GlueCrawler",),
    "AWS::IAM::OIDCProvider": ("GitHubOidcProvider",),
}
IGNORED_BY_MOTO = (
    "S3 PublicAccessBlockConfiguration",
    "S3 LifecycleConfiguration",
    "S3 OwnershipControls",
    "ECR ImageScanningConfiguration",
    "ECR LifecyclePolicy",
    "IAM role GitHubDeployRole's Federated principal (a Ref to the skipped OIDC provider)",
)
RENDER = iam.renderer()
VALUES = RENDER.resolve(
    {
        "AWS_ACCOUNT_ID": iam.ACCOUNT,
        "AWS_REGION": iam.REGION,
        "LAKE_BUCKET": LAKE,
        "ATHENA_RESULTS_BUCKET": RESULTS,
        "GLUE_DATABASE": "prod_raw",
        "ATHENA_WORK_GROUP": "insightflow",  # the template's default work group
        "ECS_CLUSTER": "insightflow",
        "GLUE_CRAWLER": PARAMETERS["GlueCrawlerName"],
        "PREFECT_API_SECRET_NAME": "insightflow/prefect-api",
        "STACK_NAME": STACK,
    },
    {},
)
ROLES = {
    "task": "insightflow-task",
    "execution": "insightflow-task-execution",
    "worker": "insightflow-worker",
    "crawler": "insightflow-raw-crawler",
    "snowflake": "insightflow-snowflake-lake-read",
    "deploy": "insightflow-github-deploy",
}


def _policy_document(value: dict | str) -> dict:
    """A role's inline policy as GetRolePolicy returns it. moto 5.2.5 stores one made by CloudFormation as the
    Python repr of the document (single quotes), which botocore hands back as a string: read it as a literal."""
    if isinstance(value, dict):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return ast.literal_eval(value)


def _client(url: str, service: str, keys: dict[str, str]):
    return boto3.client(service, endpoint_url=url, region_name=iam.REGION, **keys)


def _admin_env(url: str, admin: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "INSIGHTFLOW_", "PREFECT_API_KEY"))}
    env.pop("PREFECT_API_AUTH_STRING", None)
    return {
        **env,
        "AWS_ENDPOINT_URL": url,
        "AWS_REGION": iam.REGION,
        "AWS_ACCESS_KEY_ID": admin["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": admin["aws_secret_access_key"],
        "INSIGHTFLOW_LAKE_BUCKET": LAKE,
        "INSIGHTFLOW_ATHENA_RESULTS_BUCKET": RESULTS,
    }


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=300)


def _apply(
    url: str, admin: dict[str, str], *extra: str, command: str = "apply", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    flags = [f"--parameter={k}={v}" for k, v in PARAMETERS.items()]
    yes = ["--yes"] if command == "apply" else []
    return _run(
        ["deploy/stack.py", command, "--stack", STACK, *yes, *flags, *extra], {**_admin_env(url, admin), **(env or {})}
    )


@pytest.fixture(scope="module")
def stack():
    """An enforcing moto, an admin user, the stack applied by deploy/stack.py; yields (url, admin keys, first apply)."""
    with iam.enforcing_moto(cloudformation_outputs=True) as url:
        setup = {"aws_access_key_id": "AKIASETUP", "aws_secret_access_key": "setup"}
        users = _client(url, "iam", setup)
        users.create_user(UserName="admin")
        everything = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        users.put_user_policy(UserName="admin", PolicyName="admin", PolicyDocument=json.dumps(everything))
        key = users.create_access_key(UserName="admin")["AccessKey"]
        admin = {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
        _client(url, "s3", setup).create_bucket(Bucket=OTHER)
        iam.enforce(url)
        first = _apply(url, admin)
        assert first.returncode == 0, first.stdout + first.stderr
        yield url, admin, first


def test_apply_shows_the_change_set_then_creates_and_a_second_run_changes_nothing(stack):
    url, admin, first = stack
    template = resolve_template({"LakeBucketName": LAKE, "AthenaResultsBucketName": RESULTS, **PARAMETERS})
    shown = [line.split() for line in first.stdout.splitlines() if line.startswith("  Add ")]
    assert sorted((name, kind) for _, name, kind in shown) == sorted(
        (name, r["Type"]) for name, r in template["Resources"].items()
    )
    assert first.stdout.index("change(s)") < first.stdout.index(f"Stack {STACK}: created.")
    cf = _client(url, "cloudformation", admin)
    events = len(cf.describe_stack_events(StackName=STACK)["StackEvents"])

    again = _apply(url, admin)
    assert again.returncode == 0, again.stderr
    assert f"Stack {STACK} is up to date: no changes." in again.stdout
    assert len(cf.describe_stack_events(StackName=STACK)["StackEvents"]) == events
    # the empty change set was deleted (moto keeps executed ones; AWS drops them)
    assert {c["ExecutionStatus"] for c in cf.list_change_sets(StackName=STACK)["Summaries"]} == {"EXECUTE_COMPLETE"}

    # The Prefect API secret's value comes from the environment, never the template, and is never printed.
    # (moto skips AWS::SecretsManager::Secret, so the admin creates it here as the stack would.)
    _client(url, "secretsmanager", admin).create_secret(Name="insightflow/prefect-api", SecretString="placeholder")
    auth = {"PREFECT_API_AUTH_STRING": "admin:s3cr3t-auth-7d1e"}
    stored = _apply(url, admin, env=auth)
    assert "Prefect API secret insightflow/prefect-api: set from PREFECT_API_AUTH_STRING" in stored.stdout, (
        stored.stderr
    )
    unchanged = _apply(url, admin, env=auth)
    assert "insightflow/prefect-api: unchanged" in unchanged.stdout and "no changes" in unchanged.stdout
    assert "s3cr3t" not in stored.stdout + stored.stderr + unchanged.stdout + unchanged.stderr
    secret = _client(url, "secretsmanager", admin).get_secret_value(SecretId="insightflow/prefect-api")
    assert secret["SecretString"] == auth["PREFECT_API_AUTH_STRING"]

    # plan never applies; a parameter change (moto lists no per-resource changes for one) stays unapplied
    plan = _apply(url, admin, "--parameter=LogRetentionDays=90", command="plan")
    assert plan.returncode == 0 and f"Update stack {STACK}" in plan.stdout, plan.stderr
    logs = _client(url, "logs", admin).describe_log_groups(logGroupNamePrefix="/insightflow/flow-runs")["logGroups"]
    assert [g["retentionInDays"] for g in logs] == [30]

    # a required parameter missing is named, nothing is created
    missing = _run(
        ["deploy/stack.py", "plan", "--stack", "other"], {**_admin_env(url, admin), "INSIGHTFLOW_LAKE_BUCKET": ""}
    )
    assert (
        missing.returncode == 2 and "LakeBucketName" in missing.stderr and "INSIGHTFLOW_LAKE_BUCKET" in missing.stderr
    )


def test_what_moto_creates_matches_the_template_and_the_roles_hold_exactly_deploy_iam(stack):
    url, admin, _ = stack
    s3, roles = _client(url, "s3", admin), _client(url, "iam", admin)
    for bucket in (LAKE, RESULTS):
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    (group,) = _client(url, "logs", admin).describe_log_groups(logGroupNamePrefix="/insightflow/flow-runs")["logGroups"]
    assert group["retentionInDays"] == 30
    (repo,) = _client(url, "ecr", admin).describe_repositories(repositoryNames=["insightflow"])["repositories"]
    (cluster,) = _client(url, "ecs", admin).describe_clusters(clusters=["insightflow"])["clusters"]
    assert cluster["status"] == "ACTIVE"

    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in _client(url, "cloudformation", admin).describe_stacks(StackName=STACK)["Stacks"][0]["Outputs"]
    }
    assert outputs["EcrRepositoryUri"] == repo["repositoryUri"]
    assert outputs["TaskRoleArn"] == f"arn:aws:iam::{iam.ACCOUNT}:role/insightflow-task"

    # Each role's policy, as CloudFormation resolved it, equals deploy/iam's file rendered by render.py.
    for kind, role in ROLES.items():
        (name,) = roles.list_role_policies(RoleName=role)["PolicyNames"]
        stored = _policy_document(roles.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"])
        assert stored == RENDER.render(kind, VALUES), kind
    ecs_trust = roles.get_role(RoleName="insightflow-task")["Role"]["AssumeRolePolicyDocument"]["Statement"]
    assert [(s["Principal"], s["Action"]) for s in ecs_trust] == [
        ({"Service": "ecs-tasks.amazonaws.com"}, "sts:AssumeRole")
    ]
    (trust,) = roles.get_role(RoleName=ROLES["snowflake"])["Role"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"AWS": PARAMETERS["SnowflakeIamUserArn"]}
    assert trust["Condition"] == {"StringEquals": {"sts:ExternalId": PARAMETERS["SnowflakeExternalId"]}}
    (trust,) = roles.get_role(RoleName=ROLES["deploy"])["Role"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"] == (
        "repo:acme/insightflow:ref:refs/heads/main"
    )


def test_what_moto_skips_or_ignores_is_absent_there_and_checked_in_the_template(stack):
    url, admin, _ = stack
    resources = {
        r["LogicalResourceId"]: r
        for r in _client(url, "cloudformation", admin).describe_stack_resources(StackName=STACK)["StackResources"]
        if "LogicalResourceId" in r
    }
    template = resolve_template({"LakeBucketName": LAKE, "AthenaResultsBucketName": RESULTS, **PARAMETERS})
    skipped = {name for names in SKIPPED_BY_MOTO.values() for name in names}
    assert skipped == {n for n, r in template["Resources"].items() if r["Type"] in SKIPPED_BY_MOTO}
    assert not skipped & resources.keys(), "moto now creates one of these: move it to the created list"
    assert set(template["Resources"]) - skipped == resources.keys()
    s3, glue, athena = _client(url, "s3", admin), _client(url, "glue", admin), _client(url, "athena", admin)
    for probe in (
        lambda: s3.get_bucket_policy(Bucket=LAKE),
        lambda: s3.get_public_access_block(Bucket=LAKE),
        lambda: s3.get_bucket_lifecycle_configuration(Bucket=LAKE),
        lambda: glue.get_database(Name="prod_raw"),
    ):
        with pytest.raises(ClientError):
            probe()
    assert "insightflow" not in {g["Name"] for g in athena.list_work_groups()["WorkGroups"]}  # moto: no error, {}
    # The static checks of these parts (tests/deploy/cloudformation/test_generate.py), on the same resolved template.
    check_skipped_resources(template)


def _task_role_keys(url: str, admin: dict[str, str]) -> tuple[dict[str, str], dict]:
    """Credentials of the stack's task role, as ECS would hand them to a flow run; and its policy as the stack made it.

    moto cannot start an ECS task, so the admin lets itself assume the role (its permissions untouched);
    and moto matches Glue and Athena calls only against Resource ``*``, so the role gets the stack's own
    policy with those resources widened (tests/support/iam.py ``for_moto``); every call the run makes is then
    checked against the stack's unwidened policy, statement by statement.
    """
    roles = _client(url, "iam", admin)
    policy = _policy_document(
        roles.get_role_policy(RoleName="insightflow-task", PolicyName="insightflow-task")["PolicyDocument"]
    )
    me = _client(url, "sts", admin).get_caller_identity()["Arn"]
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": me}, "Action": "sts:AssumeRole"}],
    }
    roles.update_assume_role_policy(RoleName="insightflow-task", PolicyDocument=json.dumps(trust))
    roles.put_role_policy(
        RoleName="insightflow-task", PolicyName="insightflow-task", PolicyDocument=json.dumps(iam.for_moto(policy))
    )
    credentials = _client(url, "sts", admin).assume_role(
        RoleArn=f"arn:aws:iam::{iam.ACCOUNT}:role/insightflow-task", RoleSessionName="flow-run"
    )["Credentials"]
    keys = {
        "aws_access_key_id": credentials["AccessKeyId"],
        "aws_secret_access_key": credentials["SecretAccessKey"],
        "aws_session_token": credentials["SessionToken"],
    }
    return keys, policy


def test_blocks_come_from_the_stack_and_the_prod_flow_runs_as_its_task_role_and_is_denied_outside(
    stack, monkeypatch, tmp_path
):
    from prefect_aws import AwsCredentials
    from prefect_aws.s3 import S3Bucket

    from blocks import aws
    from blocks.athena import AthenaTarget
    from blocks.registry import register
    from blocks.stack import env_from_stack
    from flows.insightflow import insightflow
    from tasks.insightflow.sample.server import sample_server

    url, admin, _ = stack
    # The second admin command: every aws block from the stack's outputs, nothing retyped, no admin key stored.
    env = _admin_env(url, admin)
    for name in ("INSIGHTFLOW_LAKE_BUCKET", "INSIGHTFLOW_ATHENA_RESULTS_BUCKET"):
        env.pop(name)
    registered = _run(["-m", "blocks", "register", "--only", "aws", "--from-stack", STACK], env)
    assert registered.returncode == 0, registered.stdout + registered.stderr
    assert registered.stdout.count("[aws] ") == 4 and admin["aws_secret_access_key"] not in registered.stdout
    credentials = AwsCredentials.load("insightflow-aws")
    assert credentials.aws_access_key_id is None and credentials.aws_secret_access_key is None
    assert S3Bucket.load("insightflow-lake").bucket_name == LAKE
    target = AthenaTarget.load("insightflow-athena")
    assert (target.glue_database, target.work_group, target.crawler_name) == (
        "prod_raw",
        "insightflow",
        "insightflow-raw",
    )
    assert target.s3_staging_dir == f"s3://{RESULTS}/staging/"

    # The flow run: the same stack outputs, with the task role's temporary keys in place of ECS's.
    keys, policy = _task_role_keys(url, admin)
    run_env = {
        **env_from_stack(STACK, _admin_env(url, admin)),
        "AWS_ACCESS_KEY_ID": keys["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": keys["aws_secret_access_key"],
        "AWS_SESSION_TOKEN": keys["aws_session_token"],
        "INSIGHTFLOW_AWS_AUTH": "keys",
    }
    for name in ("AWS_PROFILE",):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, run_env[name])
    lines, saved = register({"aws": aws.plan}, run_env)
    assert saved == 4, lines
    server = sample_server()
    with iam.recording() as calls, server.running():
        state = insightflow(
            target="prod",
            settings={
                "home": str(tmp_path),
                "dosm_base_url": server.url(),
                "datagovmy_base_url": server.url(),
                "run_dbt": False,
            },
            datasets=["iowrt_3d", "msic"],
            return_state=True,
        )
    assert state.is_completed(), state.message
    s3, glue = _client(url, "s3", admin), _client(url, "glue", admin)
    manifest = json.loads(s3.get_object(Bucket=LAKE, Key="raw/iowrt_3d/_manifest.json")["Body"].read())
    partitions = glue.get_partitions(DatabaseName="prod_raw", TableName="iowrt_3d")["Partitions"]
    assert {"year={}/month={}".format(*p["Values"]) for p in partitions} == set(manifest["partitions"]) != set()
    assert s3.head_object(Bucket=LAKE, Key="raw/msic/data.parquet")["ContentLength"] > 0
    denied = sorted(
        f"{c.service}:{c.operation} needs {action} on {arn}"
        for c in calls
        for action, arn in iam.needs(c, "insightflow")
        if not iam.allowed(policy, action, arn)
    )
    assert denied == [] and any(c.service == "glue" for c in calls)

    # Outside the stack's lake folders, buckets and databases, the same role is refused.
    task_s3, task_glue = _client(url, "s3", keys), _client(url, "glue", keys)
    for call, code in [
        (lambda: task_s3.put_object(Bucket=OTHER, Key="raw/x.txt", Body=b"x"), "AccessDenied"),
        (lambda: task_s3.put_object(Bucket=LAKE, Key="elsewhere/x.txt", Body=b"x"), "AccessDenied"),
        (lambda: task_s3.delete_bucket(Bucket=LAKE), "AccessDenied"),
        (lambda: task_glue.delete_database(Name="prod_raw"), "glue:DeleteDatabase"),
    ]:
        with pytest.raises(ClientError) as err:
            call()
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403 and code in str(err.value)
    for action, arn in [
        ("glue:CreateTable", f"arn:aws:glue:{iam.REGION}:{iam.ACCOUNT}:table/default/x"),
        ("glue:DeleteDatabase", f"arn:aws:glue:{iam.REGION}:{iam.ACCOUNT}:database/prod_raw"),
        ("athena:StartQueryExecution", f"arn:aws:athena:{iam.REGION}:{iam.ACCOUNT}:workgroup/primary"),
    ]:
        assert not iam.allowed(policy, action, arn), (action, arn)  # IAM's verdict on the real ARN; moto's is '*'


def test_deleting_the_stack_keeps_the_lake_and_the_results(stack):
    url, admin, _ = stack
    cf, s3 = _client(url, "cloudformation", admin), _client(url, "s3", admin)
    s3.put_object(Bucket=LAKE, Key="raw/kept/probe.txt", Body=b"kept")
    cf.delete_stack(StackName=STACK)
    buckets = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert {LAKE, RESULTS} <= buckets
    assert s3.get_object(Bucket=LAKE, Key="raw/kept/probe.txt")["Body"].read() == b"kept"
    roles = {r["RoleName"] for r in _client(url, "iam", admin).list_roles()["Roles"]}
    assert not roles & set(ROLES.values())
