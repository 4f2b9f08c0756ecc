"""The IAM policies InsightFlow's AWS deployment needs, as files, and how to render them for an account.

``insightflow-task-policy.json`` is the ECS task role of both flows' prod runs (S3 lake and Athena
results, Glue catalog, Athena work group; Snowflake needs no AWS permission).
``insightflow-worker-policy.json`` is the Prefect ECS worker's role (register and run the flow's task
definition, pass the two roles to it); ``insightflow-task-execution-policy.json`` is the role ECS
itself uses to start a flow's container (pull the image, write its logs, read the API secret).
``insightflow-crawler-policy.json`` is the optional Glue crawler's role, ``insightflow-snowflake-policy.json``
the role Snowflake's storage integration assumes to read the football snapshots, and
``insightflow-deploy-policy.json`` the CI deploy role (push the image, read the stack's outputs).

The files hold ``${NAME}`` placeholders; ``render`` fills them and refuses to leave any behind.
A statement that mentions an optional placeholder left unset (the Glue crawler, the Prefect API
secret) is dropped, so the rendered policy grants nothing the deployment does not use.
``tests/deploy/iam/test_task_policy.py`` runs the prod path under this policy on moto with IAM enforcement on.

``cloudformation`` turns the same files into CloudFormation policy documents (each placeholder becomes a
``Fn::Sub`` of a stack parameter or pseudo parameter, an optional statement an ``Fn::If``):
deploy/cloudformation/generate.py builds the stack's template from them, so the two cannot disagree.

Run it from the repository root: ``python deploy/iam/render.py task --aws-account-id 123456789012 ...``
(a script, not a package: ``tests/deploy`` owns the module name ``deploy`` under pytest).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
POLICIES = {
    "task": HERE / "insightflow-task-policy.json",
    "worker": HERE / "insightflow-worker-policy.json",
    "execution": HERE / "insightflow-task-execution-policy.json",
    "crawler": HERE / "insightflow-crawler-policy.json",
    "snowflake": HERE / "insightflow-snowflake-policy.json",
    "deploy": HERE / "insightflow-deploy-policy.json",
}
# Placeholder -> (environment variable it defaults from, default value). A default of None means required.
SETTINGS: dict[str, tuple[str, str | None]] = {
    "AWS_ACCOUNT_ID": ("AWS_ACCOUNT_ID", None),
    "AWS_REGION": ("AWS_REGION", None),
    "LAKE_BUCKET": ("INSIGHTFLOW_LAKE_BUCKET", None),
    "LAKE_PREFIX": ("INSIGHTFLOW_LAKE_PREFIX", ""),
    "ATHENA_RESULTS_BUCKET": ("INSIGHTFLOW_ATHENA_RESULTS_BUCKET", None),
    "ATHENA_RESULTS_PREFIX": ("INSIGHTFLOW_ATHENA_RESULTS_PREFIX", ""),
    "GLUE_DATABASE": ("INSIGHTFLOW_GLUE_DATABASE", "insightflow_raw"),
    "ATHENA_SCHEMA": ("INSIGHTFLOW_ATHENA_SCHEMA", "insightflow"),
    "ATHENA_WORK_GROUP": ("INSIGHTFLOW_ATHENA_WORK_GROUP", "primary"),
    "ECS_CLUSTER": ("INSIGHTFLOW_ECS_CLUSTER", None),
    "TASK_ROLE_NAME": ("INSIGHTFLOW_TASK_ROLE_NAME", "insightflow-task"),
    "EXECUTION_ROLE_NAME": ("INSIGHTFLOW_EXECUTION_ROLE_NAME", "insightflow-task-execution"),
    "ECR_REPOSITORY": ("INSIGHTFLOW_ECR_REPOSITORY", "insightflow"),
    "LOG_GROUP": ("INSIGHTFLOW_LOG_GROUP", "/insightflow/flow-runs"),
    "STACK_NAME": ("INSIGHTFLOW_STACK", "insightflow"),
}
# Unset, these drop the statements that mention them instead of failing the render.
OPTIONAL = {
    "GLUE_CRAWLER": "INSIGHTFLOW_GLUE_CRAWLER",
    "PREFECT_API_SECRET_NAME": "INSIGHTFLOW_PREFECT_API_SECRET_NAME",
}
PREFIXES = {"LAKE_PREFIX", "ATHENA_RESULTS_PREFIX"}
_PLACEHOLDER = re.compile(r"\$\{([A-Z_]+)\}")
_CHECKS = {
    "AWS_ACCOUNT_ID": (r"\d{12}", "twelve digits"),
    "AWS_REGION": (r"[a-z]{2}(-[a-z]+)+-\d", "a region such as eu-west-1"),
    "LAKE_BUCKET": (r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", "an S3 bucket name"),
    "ATHENA_RESULTS_BUCKET": (r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", "an S3 bucket name"),
}


class RenderError(ValueError):
    """A value is missing or malformed; the message names every one."""


def placeholders(policy: Any) -> set[str]:
    """Every ``${NAME}`` in a policy document."""
    return set(_PLACEHOLDER.findall(json.dumps(policy)))


def resolve(values: Mapping[str, str | None], env: Mapping[str, str]) -> dict[str, str]:
    """Explicit values over the environment over defaults; prefixes normalised to ``""`` or ``"folder/"``."""
    out: dict[str, str] = {}
    for name, (variable, default) in SETTINGS.items():
        value = values.get(name) or env.get(variable) or default
        if name == "AWS_REGION" and not value:
            value = env.get("AWS_DEFAULT_REGION")
        if value is not None:
            out[name] = value
    for name, variable in OPTIONAL.items():
        if value := values.get(name) or env.get(variable):
            out[name] = value
    for name in PREFIXES & out.keys():
        folder = out[name].strip("/")
        out[name] = f"{folder}/" if folder else ""
    return out


def _fill(node: Any, values: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return _PLACEHOLDER.sub(lambda m: values[m[1]], node)
    if isinstance(node, list):
        return [_fill(item, values) for item in node]
    if isinstance(node, dict):
        return {key: _fill(item, values) for key, item in node.items()}
    return node


def render(kind: str, values: Mapping[str, str]) -> dict[str, Any]:
    """The ``kind`` policy (task | worker | execution) with every placeholder filled from ``values``."""
    document = json.loads(POLICIES[kind].read_text())
    statements = [
        s for s in document["Statement"] if not (placeholders(s) & OPTIONAL.keys()) or placeholders(s) <= values.keys()
    ]
    needed = placeholders(statements)
    problems = [
        f"{name} is not set (--{name.lower().replace('_', '-')} or ${SETTINGS[name][0]})"
        for name in sorted(needed - values.keys())
    ]
    for name in sorted(needed & values.keys()):
        value = values[name]
        if any(c in value for c in '*?"${}') or value != value.strip():
            problems.append(f"{name}={value!r} must not contain wildcards, quotes or spaces")
        elif name in _CHECKS and not re.fullmatch(_CHECKS[name][0], value):
            problems.append(f"{name}={value!r} is not {_CHECKS[name][1]}")
    if problems:
        raise RenderError(f"cannot render the {kind} policy: " + "; ".join(problems))
    return {**document, "Statement": _fill(statements, values)}


def _sub(node: Any, names: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        if not _PLACEHOLDER.search(node):
            return node
        return {"Fn::Sub": _PLACEHOLDER.sub(lambda m: "${" + names[m[1]] + "}", node)}
    if isinstance(node, list):
        return [_sub(item, names) for item in node]
    if isinstance(node, dict):
        return {key: _sub(item, names) for key, item in node.items()}
    return node


def cloudformation(kind: str, names: Mapping[str, str], conditions: Mapping[str, str]) -> dict[str, Any]:
    """The ``kind`` policy as a CloudFormation document.

    ``names`` maps each placeholder to what ``Fn::Sub`` substitutes (a parameter, ``AWS::Region``...);
    a statement mentioning an optional placeholder is kept only under the condition ``conditions`` names
    for it (an ``Fn::If`` with ``AWS::NoValue``), the template's twin of ``render`` dropping it.
    """
    document = json.loads(POLICIES[kind].read_text())
    unmapped = placeholders(document) - names.keys()
    if unmapped:
        raise RenderError(f"the {kind} policy uses {', '.join(sorted(unmapped))}, which the template does not map")
    statements: list[Any] = []
    for statement in document["Statement"]:
        rendered = _sub(statement, names)
        guards = sorted({conditions[name] for name in placeholders(statement) & OPTIONAL.keys() if name in conditions})
        if len(guards) > 1:
            raise RenderError(f"statement {statement.get('Sid')} of the {kind} policy depends on several conditions")
        statements.append({"Fn::If": [guards[0], rendered, {"Ref": "AWS::NoValue"}]} if guards else rendered)
    return {**document, "Statement": statements}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="deploy/iam/render.py", description="Fill a policy's placeholders and print it as JSON."
    )
    cmd = parser
    cmd.add_argument("kind", choices=sorted(POLICIES))
    for name, (variable, default) in {**SETTINGS, **{k: (v, None) for k, v in OPTIONAL.items()}}.items():
        hint = f"default ${variable}" + (f", else {default!r}" if default else "")
        cmd.add_argument(f"--{name.lower().replace('_', '-')}", dest=name, help=hint)
    cmd.add_argument("-o", "--output", help="write to this file instead of stdout")
    args = parser.parse_args(argv)
    values = resolve({name: getattr(args, name) for name in [*SETTINGS, *OPTIONAL]}, os.environ)
    try:
        policy = render(args.kind, values)
    except RenderError as exc:
        print(exc, file=sys.stderr)
        return 2
    text = json.dumps(policy, indent=2) + "\n"
    if args.output:
        with open(args.output, "w") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
