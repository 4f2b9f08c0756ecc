"""Create or update InsightFlow's CloudFormation stack (deploy/cloudformation/insightflow.yaml), showing the change set first.

    python deploy/stack.py apply [--stack insightflow] [--parameter Name=Value ...] [--yes]
    python deploy/stack.py plan  [...]            # the change set only, never applied
    python deploy/stack.py output [NAME]          # all outputs as NAME=value lines, or one value
    python deploy/stack.py job-template --vpc-id V --subnet A --subnet B --security-group G > ecs-template.json

``apply`` makes a change set, prints what it would add, modify or remove (and whether a resource is
replaced), asks before executing it (``--yes`` for a script), waits for the stack and prints its
outputs. Run again with nothing changed, CloudFormation reports no changes and nothing is touched.

Parameter values, first found wins: ``--parameter``, the same variables ``python -m blocks register``
reads (``INSIGHTFLOW_LAKE_BUCKET`` ...), the stack's current value, the template's default. So the
second run needs no flags. With ``PREFECT_API_KEY`` (Prefect Cloud) or ``PREFECT_API_AUTH_STRING``
(self-hosted) exported, the stack's Prefect API secret is set to it (never printed, never in the
template); unchanged values are left alone.

Needs an admin's AWS credentials (roles are named: ``CAPABILITY_NAMED_IAM``). Deleting the stack keeps
the lake bucket, the Athena results bucket and the Glue databases (``DeletionPolicy: Retain``).
A script run from the repository root, like deploy/iam/render.py (deploy/ is not an installed package).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

TEMPLATE = Path(__file__).resolve().parent / "cloudformation" / "insightflow.yaml"
JOB_TEMPLATE = Path(__file__).resolve().parent / "ecs" / "base-job-template.json"
DEFAULT_STACK = "insightflow"
# Template parameter -> the environment variable it defaults from (the names blocks/ and deploy/iam/ use).
FROM_ENV = {
    "LakeBucketName": "INSIGHTFLOW_LAKE_BUCKET",
    "LakePrefix": "INSIGHTFLOW_LAKE_PREFIX",
    "AthenaResultsBucketName": "INSIGHTFLOW_ATHENA_RESULTS_BUCKET",
    "AthenaResultsPrefix": "INSIGHTFLOW_ATHENA_RESULTS_PREFIX",
    "GlueDatabaseName": "INSIGHTFLOW_GLUE_DATABASE",
    "AthenaSchemaName": "INSIGHTFLOW_ATHENA_SCHEMA",
    "WorkGroupName": "INSIGHTFLOW_ATHENA_WORK_GROUP",
    "GlueCrawlerName": "INSIGHTFLOW_GLUE_CRAWLER",
    "ClusterName": "INSIGHTFLOW_ECS_CLUSTER",
    "EcrRepositoryName": "INSIGHTFLOW_ECR_REPOSITORY",
    "LogGroupName": "INSIGHTFLOW_LOG_GROUP",
    "TaskRoleName": "INSIGHTFLOW_TASK_ROLE_NAME",
    "TaskExecutionRoleName": "INSIGHTFLOW_EXECUTION_ROLE_NAME",
    "PrefectApiSecretName": "INSIGHTFLOW_PREFECT_API_SECRET_NAME",
    "GitHubRepository": "INSIGHTFLOW_GITHUB_REPOSITORY",
}
FOLDERS = {"LakePrefix", "AthenaResultsPrefix"}
API_SECRET_VARIABLES = ("PREFECT_API_KEY", "PREFECT_API_AUTH_STRING")
NO_CHANGES = ("didn't contain changes", "No updates are to be performed")


class StackError(RuntimeError):
    """The stack cannot be planned or applied; the message says why."""


def template_parameters(text: str | None = None) -> dict[str, dict[str, Any]]:
    return yaml.safe_load(text if text is not None else TEMPLATE.read_text())["Parameters"]


def _folder(value: str) -> str:
    folder = value.strip("/")
    return f"{folder}/" if folder else ""


def resolve(
    declared: Mapping[str, Mapping[str, Any]],
    given: Mapping[str, str],
    env: Mapping[str, str],
    previous: Mapping[str, str],
) -> dict[str, str]:
    """Every parameter's value (flag, environment, current stack, default); raises naming any left unset."""
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise StackError(f"unknown parameter(s) {', '.join(unknown)}; the template has {', '.join(declared)}")
    values: dict[str, str] = {}
    missing = []
    for name, spec in declared.items():
        variable = FROM_ENV.get(name)
        if name in given:
            value = given[name]
        elif variable and env.get(variable):
            value = env[variable]
        elif name in previous:
            value = previous[name]
        elif "Default" in spec:
            value = str(spec["Default"])
        else:
            missing.append(f"{name} (--parameter {name}=..." + (f" or ${variable})" if variable else ")"))
            continue
        values[name] = _folder(value) if name in FOLDERS else value
    if missing:
        raise StackError("set " + ", ".join(missing))
    return values


def _client(service: str):
    import boto3

    # AWS_REGION as the other commands read it; unset, boto3's own chain (AWS_DEFAULT_REGION, ~/.aws/config).
    return boto3.client(service, region_name=os.environ.get("AWS_REGION") or None)


def _stack(cf, name: str) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    try:
        return cf.describe_stacks(StackName=name)["Stacks"][0]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise


def _wait_for_change_set(cf, change_set_id: str, poll: float, timeout: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        described = cf.describe_change_set(ChangeSetName=change_set_id)
        if described["Status"] in ("CREATE_COMPLETE", "FAILED"):
            return described
        if time.monotonic() > deadline:
            raise StackError(f"change set {change_set_id} still {described['Status']} after {timeout:.0f} s")
        time.sleep(poll)


def describe_changes(changes: list[dict[str, Any]]) -> list[str]:
    """One line per resource change: action, logical id, type, and whether it is replaced."""
    lines = []
    for change in changes:
        rc = change["ResourceChange"]
        replacement = rc.get("Replacement")
        note = " (REPLACED)" if replacement == "True" else " (may be replaced)" if replacement == "Conditional" else ""
        lines.append(f"  {rc['Action']:<8} {rc['LogicalResourceId']:<34} {rc['ResourceType']}{note}")
    return lines


def outputs(cf, name: str) -> dict[str, str]:
    stack = _stack(cf, name)
    if stack is None:
        raise StackError(f"stack {name} does not exist: run python deploy/stack.py apply first")
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs") or []}


def _store_api_secret(secret_name: str, env: Mapping[str, str], out=print) -> None:
    """Put PREFECT_API_KEY / PREFECT_API_AUTH_STRING into the stack's secret when it differs (never printed)."""
    variable = next((v for v in API_SECRET_VARIABLES if env.get(v)), None)
    if variable is None:
        out(f"Prefect API secret: left as is (export {' or '.join(API_SECRET_VARIABLES)} to set it)")
        return
    secrets = _client("secretsmanager")
    current = secrets.get_secret_value(SecretId=secret_name)["SecretString"]
    if current == env[variable]:
        out(f"Prefect API secret {secret_name}: unchanged ({variable})")
        return
    secrets.put_secret_value(SecretId=secret_name, SecretString=env[variable])
    out(f"Prefect API secret {secret_name}: set from {variable}")


def apply(
    name: str,
    given: Mapping[str, str],
    env: Mapping[str, str],
    *,
    execute: bool,
    confirm=None,
    poll: float = 5.0,
    out=print,
) -> str:
    """Plan (and, if ``execute``, apply) the stack; returns 'unchanged', 'planned', 'declined', 'created' or 'updated'."""
    cf = _client("cloudformation")
    body = TEMPLATE.read_text()
    stack = _stack(cf, name)
    exists = stack is not None and stack["StackStatus"] != "REVIEW_IN_PROGRESS"
    if exists and stack["StackStatus"].endswith(("_IN_PROGRESS", "ROLLBACK_FAILED", "DELETE_FAILED")):
        raise StackError(f"stack {name} is {stack['StackStatus']}: wait for it (or repair it in the console) first")
    if exists and stack["StackStatus"] == "ROLLBACK_COMPLETE":
        raise StackError(
            f"stack {name} failed to create (ROLLBACK_COMPLETE) and cannot be updated: see its events, then "
            f"`aws cloudformation delete-stack --stack-name {name}` (buckets and Glue databases are kept) and apply again"
        )
    previous = {p["ParameterKey"]: p["ParameterValue"] for p in (stack or {}).get("Parameters") or []}
    values = resolve(template_parameters(body), given, env, previous if exists else {})
    change_set = cf.create_change_set(
        StackName=name,
        TemplateBody=body,
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()],
        Capabilities=["CAPABILITY_NAMED_IAM"],
        ChangeSetType="UPDATE" if exists else "CREATE",
        ChangeSetName=f"insightflow-{datetime.now(UTC):%Y%m%d-%H%M%S}",
        Description="python deploy/stack.py apply",
    )
    described = _wait_for_change_set(cf, change_set["Id"], poll)
    if described["Status"] == "FAILED":
        reason = described.get("StatusReason") or ""
        cf.delete_change_set(ChangeSetName=change_set["Id"])
        if any(marker in reason for marker in NO_CHANGES):
            out(f"Stack {name} is up to date: no changes.")
            if execute:
                _store_api_secret(values["PrefectApiSecretName"], env, out)
            return "unchanged"
        raise StackError(f"CloudFormation refused the change set for {name}: {reason}")
    changes = described.get("Changes") or []
    out(f"{'Update' if exists else 'Create'} stack {name}: {len(changes)} change(s)")
    for line in describe_changes(changes):
        out(line)
    if not execute:
        cf.delete_change_set(ChangeSetName=change_set["Id"])
        return "planned"
    if confirm is not None and not confirm(f"Apply these {len(changes)} change(s) to {name}? [y/N] "):
        cf.delete_change_set(ChangeSetName=change_set["Id"])
        out("Not applied; the change set was deleted.")
        return "declined"
    cf.execute_change_set(ChangeSetName=change_set["Id"])
    waiter = cf.get_waiter("stack_update_complete" if exists else "stack_create_complete")
    try:
        waiter.wait(StackName=name, WaiterConfig={"Delay": max(1, int(poll)), "MaxAttempts": int(3600 / max(1, poll))})
    except Exception as exc:  # botocore's WaiterError: name what failed instead
        failed = [
            f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', '')}"
            for e in cf.describe_stack_events(StackName=name)["StackEvents"]
            if e["ResourceStatus"].endswith("FAILED")
        ]
        raise StackError(f"stack {name} did not complete: {'; '.join(failed[:5]) or exc}") from exc
    out(f"Stack {name}: {'updated' if exists else 'created'}.")
    for key, value in sorted(outputs(cf, name).items()):
        out(f"  {key} = {value}")
    _store_api_secret(values["PrefectApiSecretName"], env, out)
    return "updated" if exists else "created"


def job_template(
    values: Mapping[str, str], vpc_id: str, subnets: list[str], security_group: str, prefect_cloud: bool = False
) -> dict[str, Any]:
    """deploy/ecs/base-job-template.json with the stack's cluster, roles, log group and API secret and the given network."""
    import json

    if len(subnets) != 2:
        raise StackError(f"give two private subnets (--subnet twice), not {len(subnets)}")
    text = JOB_TEMPLATE.read_text()
    for placeholder, value in {
        "<ECS_CLUSTER>": values["EcsCluster"],
        "<TASK_ROLE_ARN>": values["TaskRoleArn"],
        "<EXECUTION_ROLE_ARN>": values["TaskExecutionRoleArn"],
        "<VPC_ID>": vpc_id,
        "<PRIVATE_SUBNET_ID_A>": subnets[0],
        "<PRIVATE_SUBNET_ID_B>": subnets[1],
        "<SECURITY_GROUP_ID>": security_group,
        '"/insightflow/flow-runs"': json.dumps(values["LogGroup"]),
    }.items():
        if placeholder not in text:
            raise StackError(f"{JOB_TEMPLATE.name} no longer has {placeholder}: update deploy/stack.py")
        text = text.replace(placeholder, value)
    template = json.loads(text)
    # Self-hosted: the auth string's ARN; Prefect Cloud: the API key's (docs/deploy.md, section 1).
    secret = "prefect_api_key_secret_arn" if prefect_cloud else "prefect_api_auth_string_secret_arn"
    template["variables"]["properties"][secret]["default"] = values["PrefectApiSecretArn"]
    return template


def _ask(prompt: str) -> bool:
    if not sys.stdin.isatty():
        raise StackError("not applied: no terminal to confirm on; pass --yes to apply without asking")
    return input(prompt).strip().lower() in ("y", "yes")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deploy/stack.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for command, text in (("apply", "create or update the stack"), ("plan", "show the change set only")):
        cmd = sub.add_parser(command, help=text)
        cmd.add_argument("--stack", default=os.environ.get("INSIGHTFLOW_STACK") or DEFAULT_STACK)
        cmd.add_argument("--parameter", action="append", default=[], metavar="NAME=VALUE", help="a template parameter")
        if command == "apply":
            cmd.add_argument("--yes", action="store_true", help="apply without asking")
    out = sub.add_parser("output", help="print the stack's outputs (NAME=value), or one output's value")
    out.add_argument("name", nargs="?")
    out.add_argument("--stack", default=os.environ.get("INSIGHTFLOW_STACK") or DEFAULT_STACK)
    job = sub.add_parser("job-template", help="print the ECS pool's base job template filled from the stack's outputs")
    job.add_argument("--stack", default=os.environ.get("INSIGHTFLOW_STACK") or DEFAULT_STACK)
    job.add_argument("--vpc-id", required=True)
    job.add_argument("--subnet", action="append", default=[], required=True, help="a private subnet (twice)")
    job.add_argument("--security-group", required=True)
    job.add_argument(
        "--prefect-cloud", action="store_true", help="the secret holds a Cloud API key, not an auth string"
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "job-template":
            import json

            values = outputs(_client("cloudformation"), args.stack)
            template = job_template(values, args.vpc_id, args.subnet, args.security_group, args.prefect_cloud)
            print(json.dumps(template, indent=2))
            return 0
        if args.command == "output":
            values = outputs(_client("cloudformation"), args.stack)
            if args.name is None:
                for key, value in sorted(values.items()):
                    print(f"{key}={value}")
            elif args.name in values:
                print(values[args.name])
            else:
                raise StackError(f"stack {args.stack} has no output {args.name} (it has {', '.join(sorted(values))})")
            return 0
        given = {}
        for item in args.parameter:
            key, sep, value = item.partition("=")
            if not sep:
                raise StackError(f"--parameter {item!r} is not NAME=VALUE")
            given[key] = value
        result = apply(
            args.stack,
            given,
            os.environ,
            execute=args.command == "apply",
            confirm=None if args.command == "plan" or args.yes else _ask,
        )
        return 1 if result == "declined" else 0
    except StackError as exc:
        print(f"deploy/stack.py: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
