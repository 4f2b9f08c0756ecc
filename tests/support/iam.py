"""IAM helpers for the policy tests: a moto server with enforcement on, an AWS-call recorder, a static evaluator.

moto checks S3 actions and resources, but Glue and Athena actions only (it matches every call against
Resource ``*``), and ignores conditions. So the enforced run proves the action list, and
``allowed`` checks each recorded call's real ARN (catalog, database, table, work group) against the
rendered policy statically, the way IAM would.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tasks.core.prefect_server import free_port

RENDER_SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "iam" / "render.py"

ACCOUNT = "123456789012"  # moto's account
REGION = "us-east-1"

_S3_OBJECT = {
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "DeleteObject": "s3:DeleteObject",
}
# On AWS a bucket HEAD needs s3:ListBucket (moto calls it s3:HeadBucket).
_S3_BUCKET = {
    "ListObjectsV2": "s3:ListBucket",
    "ListObjects": "s3:ListBucket",
    "HeadBucket": "s3:ListBucket",
    "GetBucketLocation": "s3:GetBucketLocation",
}
_ATHENA = {"StartQueryExecution", "GetQueryExecution", "GetQueryResults", "StopQueryExecution", "GetWorkGroup"}


@dataclass(frozen=True)
class Call:
    """One AWS API call a client made: service, operation and the parameters that name its resource."""

    service: str
    operation: str
    params: tuple[tuple[str, str], ...]

    def get(self, name: str) -> str | None:
        return dict(self.params).get(name)


def renderer():
    """deploy/iam/render.py as a module (a script: under pytest the name ``deploy`` is tests/deploy)."""
    spec = importlib.util.spec_from_file_location("insightflow_iam_render", RENDER_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def unmapped(calls: list[Call]) -> list[str]:
    """The distinct calls ``needs`` has no IAM mapping for (``service:Operation``), to name them all at once."""
    missing = set()
    for call in calls:
        try:
            needs(call, "primary")
        except AssertionError:
            missing.add(f"{call.service}:{call.operation}")
    return sorted(missing)


def needs(call: Call, work_group: str) -> list[tuple[str, str]]:
    """The (IAM action, resource ARN) pairs AWS authorises ``call`` against; raises for an unmapped call."""
    if call.service == "s3":
        bucket, key = call.get("Bucket"), call.get("Key")
        if call.operation in _S3_OBJECT:
            return [(_S3_OBJECT[call.operation], f"arn:aws:s3:::{bucket}/{key}")]
        if call.operation in _S3_BUCKET:
            return [(_S3_BUCKET[call.operation], f"arn:aws:s3:::{bucket}")]
    if call.service == "glue":
        base = f"arn:aws:glue:{REGION}:{ACCOUNT}"
        database = call.get("DatabaseName") or (call.get("Name") if "Database" in call.operation else None)
        table = call.get("TableName") or (call.get("Name") if "Table" in call.operation else None)
        if call.operation == "CreateDatabase":
            database = call.get("DatabaseInput.Name")
        if call.operation in ("CreateTable", "UpdateTable"):
            table = call.get("TableInput.Name")
        arns = [f"{base}:catalog"]
        if database:
            arns.append(f"{base}:database/{database}")
        if database and table:
            arns.append(f"{base}:table/{database}/{table}")
        if call.operation in ("StartCrawler", "GetCrawler"):
            arns = [f"{base}:crawler/{call.get('Name')}"]
        return [(f"glue:{call.operation}", arn) for arn in arns]
    if call.service == "sts" and call.operation == "GetCallerIdentity":
        return []  # needs no permission: IAM always allows it (dbt-athena asks for the account id)
    if call.service == "athena" and call.operation in _ATHENA:
        group = call.get("WorkGroup") or work_group
        return [(f"athena:{call.operation}", f"arn:aws:athena:{REGION}:{ACCOUNT}:workgroup/{group}")]
    raise AssertionError(
        f"unmapped AWS call {call.service}:{call.operation}: add it to tests/support/iam.py and the policy"
    )


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def allowed(policy: dict, action: str, resource: str) -> bool:
    """Whether an Allow statement of ``policy`` matches (IAM wildcards; conditions not evaluated, ours have none)."""
    return any(
        s["Effect"] == "Allow"
        and any(fnmatch.fnmatchcase(action, a) for a in _as_list(s["Action"]))
        and any(fnmatch.fnmatchcase(resource, r) for r in _as_list(s["Resource"]))
        for s in policy["Statement"]
    )


def actions(policy: dict) -> set[str]:
    return {a for s in policy["Statement"] for a in _as_list(s["Action"])}


MOTO_WIDENS = ("glue:", "athena:")
# The Athena stand-in (standins/aws) checks Athena's actions on the work group's real ARN: only Glue is widened.
STANDIN_WIDENS = ("glue:",)


def for_moto(policy: dict, widen: tuple[str, ...] = MOTO_WIDENS) -> dict:
    """The same statements with Glue/Athena resources widened to ``*``, the only resource moto matches them against."""
    statements = []
    for s in policy["Statement"]:
        if any(a.startswith(widen) for a in _as_list(s["Action"])):
            s = {**s, "Resource": "*"}
        statements.append(s)
    return {**policy, "Statement": statements}


def without_action(policy: dict, action: str) -> dict:
    """``policy`` with ``action`` removed from every statement (statements left empty are dropped)."""
    statements = []
    for s in policy["Statement"]:
        kept = [a for a in _as_list(s["Action"]) if a != action]
        if kept:
            statements.append({**s, "Action": kept})
    return {**policy, "Statement": statements}


@contextmanager
def recording() -> Iterator[list[Call]]:
    """Record every AWS call made by any botocore client created inside the block (event hook on each client)."""
    import botocore.session
    from prefect_aws.credentials import _get_client_cached

    calls: list[Call] = []
    original = botocore.session.Session.create_client

    def record(params, model, **_):
        flat: dict[str, str] = {}
        for name, value in params.items():
            if isinstance(value, str):
                flat[name] = value
            elif isinstance(value, dict) and isinstance(value.get("Name"), str):
                flat[f"{name}.Name"] = value["Name"]
        calls.append(Call(model.service_model.service_name, model.name, tuple(sorted(flat.items()))))

    def create_client(self, *args, **kwargs):
        client = original(self, *args, **kwargs)
        client.meta.events.register("provide-client-params", record)
        return client

    _get_client_cached.cache_clear()  # clients made before recording would go unseen
    botocore.session.Session.create_client = create_client
    try:
        yield calls
    finally:
        botocore.session.Session.create_client = original
        _get_client_cached.cache_clear()


@contextmanager
def enforcing_moto(cloudformation_outputs: bool = False, athena: bool = False) -> Iterator[str]:
    """A moto server in its own process (enforcement is global to a server), auth off until ``enforce``.

    ``cloudformation_outputs``: start tests/support/moto_cfn_server.py, which refreshes a stack's outputs
    after ExecuteChangeSet (moto 5.2.5 does not). ``athena``: start the Athena stand-in (standins/aws),
    moto with Athena answered over DuckDB, acting with each caller's own permissions.
    """
    port = free_port()
    if athena:
        command = ["-m", "standins.aws", "--port", str(port)]
    elif cloudformation_outputs:
        command = [str(Path(__file__).with_name("moto_cfn_server.py")), "-H", "127.0.0.1", "-p", str(port)]
    else:
        command = ["-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    process = subprocess.Popen(
        [sys.executable, *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=Path(__file__).resolve().parents[2],
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # moto imports every backend: slow on a loaded machine
        while True:
            try:
                httpx.get(f"{url}/moto-api/data.json", timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the enforcing moto server did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def enforce(url: str, free_requests: int = 0) -> None:
    """Turn IAM enforcement on after ``free_requests`` more unauthenticated calls."""
    httpx.post(f"{url}/moto-api/reset-auth", content=str(free_requests).encode(), timeout=10).raise_for_status()
