"""The ECS task role's policy (deploy/iam/insightflow-task-policy.json), enforced on moto.

A moto server of its own (IAM enforcement is global to a server) holds a user whose only permissions
are the rendered policy. That user runs the prod flow twice and the report's Athena read; forbidden
calls are denied; without any one action the code uses, the prod path fails naming that action. Every
AWS call the runs make is recorded (botocore event hook) and checked against the policy's real ARNs,
which moto cannot check for Glue and Athena.
"""

from __future__ import annotations

import functools
import json
from datetime import date

import boto3
import httpx
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from botocore.exceptions import ClientError

from tasks.insightflow.contracts import DATASETS
from tests.support import iam
from tests.tasks.insightflow.report.test_publish_athena import queued_results

pytestmark = [pytest.mark.aws, pytest.mark.usefixtures("prefect_server")]

LAKE, RESULTS, OTHER = "insightflow-lake", "insightflow-athena-results", "someone-elses-bucket"
RENDER = iam.renderer()
VALUES = RENDER.resolve(
    {
        "AWS_ACCOUNT_ID": iam.ACCOUNT,
        "AWS_REGION": iam.REGION,
        "LAKE_BUCKET": LAKE,
        "ATHENA_RESULTS_BUCKET": RESULTS,
        "GLUE_DATABASE": "prod_raw",
    },
    {},
)
POLICY = RENDER.render("task", VALUES)
# In the policy for what AWS does on the caller's behalf or code moto cannot run; each with its reason. The ones
# dbt-athena and PyAthena call are made, and checked, in test_task_policy_athena.py (dbt on the Athena stand-in).
NOT_EXERCISED_ON_MOTO = {
    "s3:GetBucketLocation": "Athena checks the lake's and the results bucket's region",
    "s3:AbortMultipartUpload": "boto3 aborts a multipart upload (objects > 8 MB) that failed",
    "s3:ListBucketMultipartUploads": "Athena writing query results",
    "s3:ListMultipartUploadParts": "Athena writing query results",
    "glue:GetPartition": "Athena planning a query over the raw tables",
    "glue:GetPartitions": "Athena planning a query over the raw tables",
    "glue:GetDatabases": "dbt-athena listing schemas",
    "glue:GetTables": "dbt-athena listing relations",
    "glue:DeleteTable": "dbt-athena replacing a table model",
    "glue:DeleteTableVersion": "dbt-athena pruning table versions",
    "glue:GetTableVersions": "dbt-athena pruning table versions",
    "athena:StopQueryExecution": "PyAthena/dbt cancelling a query",
    "athena:GetWorkGroup": "dbt-athena reading the work group's output location",
}
SAMPLE_FIRST_MONTHS = 4


def _client(url: str, service: str, keys: tuple[str, str]):
    return boto3.client(
        service, endpoint_url=url, region_name=iam.REGION, aws_access_key_id=keys[0], aws_secret_access_key=keys[1]
    )


def task_user_server(
    url: str, buckets: list[str], widen: tuple[str, ...] = iam.MOTO_WIDENS
) -> tuple[str, tuple[str, str], tuple[str, str]]:
    """On a fresh enforcing server: the buckets, an admin and the task user; then enforcement on.

    Returns (url, admin keys, task keys).
    """
    setup = ("AKIASETUP", "setup")
    s3, users = _client(url, "s3", setup), _client(url, "iam", setup)
    for bucket in buckets:
        s3.create_bucket(Bucket=bucket)
    keys = {}
    for user, policy in [
        ("admin", {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
        ("insightflow-task", iam.for_moto(POLICY, widen)),
    ]:
        users.create_user(UserName=user)
        users.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=json.dumps(policy))
        key = users.create_access_key(UserName=user)["AccessKey"]
        keys[user] = (key["AccessKeyId"], key["SecretAccessKey"])
    iam.enforce(url)
    return url, keys["admin"], keys["insightflow-task"]


@pytest.fixture(scope="module")
def moto_iam():
    """An enforcing moto: the buckets, an admin user for setup, the task user; yields (url, admin keys, task keys)."""
    with iam.enforcing_moto() as url:
        yield task_user_server(url, [LAKE, RESULTS, OTHER])


def _use_policy(moto_iam, policy: dict, widen: tuple[str, ...] = iam.MOTO_WIDENS) -> None:
    url, admin, _ = moto_iam
    _client(url, "iam", admin).put_user_policy(
        UserName="insightflow-task", PolicyName="p", PolicyDocument=json.dumps(iam.for_moto(policy, widen))
    )


def _register_blocks(moto_iam, monkeypatch) -> None:
    from blocks import aws
    from blocks.registry import register

    url, _, task = moto_iam
    env = {
        "AWS_REGION": iam.REGION,
        "AWS_ACCESS_KEY_ID": task[0],
        "AWS_SECRET_ACCESS_KEY": task[1],
        "AWS_ENDPOINT_URL": url,
        "INSIGHTFLOW_LAKE_BUCKET": LAKE,
        "INSIGHTFLOW_ATHENA_RESULTS_BUCKET": RESULTS,
        "INSIGHTFLOW_GLUE_DATABASE": "prod_raw",
        "INSIGHTFLOW_AWS_AUTH": "keys",
    }
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    lines, saved = register({"aws": aws.plan}, env)
    assert saved in (0, 4) and not any("skipped" in line for line in lines), lines


def _queue_report_results(url: str) -> None:
    httpx.post(
        f"{url}/moto-api/static/athena/query-results",
        json={"region": iam.REGION, "results": queued_results()},
        timeout=10,
    ).raise_for_status()


def _read_report() -> None:
    from tasks.insightflow.report.findings import read_marts
    from tasks.insightflow.report.publish import athena_query

    data = read_marts(athena_query("insightflow-athena", "insightflow-aws", poll_interval_s=0.05))
    assert data.latest_group_month == date(2024, 7, 1)


def _denied_calls(calls: list[iam.Call]) -> list[str]:
    return sorted(
        {
            f"{call.service}:{call.operation} needs {action} on {arn}"
            for call in calls
            for action, arn in iam.needs(call, VALUES["ATHENA_WORK_GROUP"])
            if not iam.allowed(POLICY, action, arn)
        }
    )


def test_the_task_user_runs_the_prod_path_twice_and_every_call_it_makes_is_allowed(moto_iam, monkeypatch, tmp_path):
    from flows.insightflow import insightflow
    from tasks.insightflow.sample.server import sample_server

    url, admin, _ = moto_iam
    _use_policy(moto_iam, POLICY)
    _register_blocks(moto_iam, monkeypatch)
    server = sample_server()
    with iam.recording() as calls:
        for _ in range(2):
            with server.running():
                state = insightflow(
                    target="prod",
                    datasets=["iowrt_3d", "msic"],  # one partitioned, one not: every kind of call, half the time
                    settings={
                        "home": str(tmp_path),
                        "dosm_base_url": server.url(),
                        "datagovmy_base_url": server.url(),
                        "run_dbt": False,
                    },
                    return_state=True,
                )
            assert state.is_completed(), state.message
            _queue_report_results(url)
            _read_report()

    glue, s3 = _client(url, "glue", admin), _client(url, "s3", admin)
    partitions = glue.get_partitions(DatabaseName="prod_raw", TableName="iowrt_3d")["Partitions"]
    manifest = json.loads(s3.get_object(Bucket=LAKE, Key="raw/iowrt_3d/_manifest.json")["Body"].read())
    assert {"year={}/month={}".format(*p["Values"]) for p in partitions} == set(manifest["partitions"])
    assert len(partitions) > 100  # the sample's months since 2015
    assert s3.head_object(Bucket=LAKE, Key="raw/msic/data.parquet")["ContentLength"] > 0
    operations = {(c.service, c.operation) for c in calls}
    assert {("s3", "PutObject"), ("glue", "BatchCreatePartition"), ("athena", "StartQueryExecution")} <= operations
    assert _denied_calls(calls) == []


def test_the_task_user_is_denied_what_the_policy_does_not_grant(moto_iam):
    url, admin, task = moto_iam
    _use_policy(moto_iam, POLICY)
    s3, glue = _client(url, "s3", task), _client(url, "glue", task)
    s3.put_object(Bucket=LAKE, Key="raw/probe/allowed.txt", Body=b"x")  # the control: the same keys can write here
    for call, code in [
        (lambda: s3.delete_bucket(Bucket=LAKE), "AccessDenied"),
        (lambda: s3.put_object(Bucket=OTHER, Key="raw/x.txt", Body=b"x"), "AccessDenied"),
        (lambda: s3.put_object(Bucket=LAKE, Key="outside-the-lake-prefixes/x.txt", Body=b"x"), "AccessDenied"),
        (lambda: glue.delete_database(Name="prod_raw"), "glue:DeleteDatabase"),
    ]:
        with pytest.raises(ClientError) as err:
            call()
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert code in str(err.value)  # moto's Glue denial is an XML body botocore leaves unparsed
    assert LAKE in {b["Name"] for b in _client(url, "s3", admin).list_buckets()["Buckets"]}
    # moto cannot check these (Glue resources are matched against '*' there): IAM would, on the real ARNs.
    assert not iam.allowed(POLICY, "glue:DeleteDatabase", f"arn:aws:glue:{iam.REGION}:{iam.ACCOUNT}:database/prod_raw")
    assert not iam.allowed(POLICY, "glue:CreateTable", f"arn:aws:glue:{iam.REGION}:{iam.ACCOUNT}:table/default/x")
    assert not iam.allowed(POLICY, "s3:PutObject", f"arn:aws:s3:::{RESULTS.replace('results', 'other')}/x")


@functools.cache
def _small_iowrt(months: int, *, shift: int = 0, extra_column: bool = False) -> pa.Table:
    from tasks.insightflow.ingest.validate import conform
    from tasks.insightflow.sample.data import SAMPLE_TABLES

    source = SAMPLE_TABLES["iowrt"]()
    dates = sorted(set(source["date"].cast(pa.date32()).to_pylist()))[shift : shift + months]
    table = source.filter(pc.is_in(source["date"].cast(pa.date32()), pa.array(dates, pa.date32())))
    if extra_column:
        table = table.append_column("new_measure", pa.array([1.5] * table.num_rows))
    return conform(DATASETS["iowrt"], "http://sample/iowrt.parquet", table)


def _prod_path(moto_iam, database: str = "prod_raw") -> None:
    """Land, catalog, land changed data (a month dropped, one added, a new column), catalog, read the report."""
    from prefect_aws import AwsClientParameters, AwsCredentials
    from prefect_aws.s3 import S3Bucket

    from tasks.core.aws import with_retries
    from tasks.core.lake.s3 import S3Lake
    from tasks.insightflow.catalog.glue import catalog_landed, ensure_database
    from tasks.insightflow.ingest.fetch import Fetched
    from tasks.insightflow.ingest.land import land

    url, _, task = moto_iam
    credentials = with_retries(
        AwsCredentials(
            aws_access_key_id=task[0],
            aws_secret_access_key=task[1],
            region_name=iam.REGION,
            aws_client_parameters=AwsClientParameters(endpoint_url=url),
        )
    )
    lake, glue = S3Lake(S3Bucket(bucket_name=LAKE, credentials=credentials)), credentials.get_client("glue")
    fetched = Fetched("iowrt", "http://sample/iowrt.parquet", "new")
    ensure_database(glue, database)
    for table in (_small_iowrt(SAMPLE_FIRST_MONTHS), _small_iowrt(SAMPLE_FIRST_MONTHS, shift=1, extra_column=True)):
        catalog_landed(glue, database, lake, land(lake, DATASETS["iowrt"], table, fetched))
    _queue_report_results(url)
    _read_report()


def _reset_lake(moto_iam) -> None:
    """Empty the lake and drop the raw database (as the admin), so the next prod path starts from nothing."""
    url, admin, _ = moto_iam
    s3, glue = _client(url, "s3", admin), _client(url, "glue", admin)
    for obj in s3.list_objects_v2(Bucket=LAKE).get("Contents", []):
        s3.delete_object(Bucket=LAKE, Key=obj["Key"])
    try:
        glue.delete_database(Name="prod_raw")
    except glue.exceptions.EntityNotFoundException:
        pass


def test_the_policy_has_no_action_the_prod_path_does_not_need_or_the_docs_do_not_explain(moto_iam, monkeypatch):
    _use_policy(moto_iam, POLICY)
    _register_blocks(moto_iam, monkeypatch)
    _reset_lake(moto_iam)
    with iam.recording() as calls:
        _prod_path(moto_iam)
    used = {action for call in calls for action, _ in iam.needs(call, "primary")}
    assert _denied_calls(calls) == []
    assert iam.actions(POLICY) - {"glue:StartCrawler", "glue:GetCrawler"} == used | NOT_EXERCISED_ON_MOTO.keys(), (
        "an action in the policy is neither used on moto nor explained, or the code needs one it lacks"
    )
    assert not used & NOT_EXERCISED_ON_MOTO.keys()


USED_ON_MOTO = sorted(iam.actions(POLICY) - NOT_EXERCISED_ON_MOTO.keys() - {"glue:StartCrawler", "glue:GetCrawler"})


@pytest.mark.parametrize("action", USED_ON_MOTO)
def test_without_any_one_action_it_uses_the_prod_path_fails_naming_it(moto_iam, monkeypatch, action):
    _register_blocks(moto_iam, monkeypatch)
    _reset_lake(moto_iam)
    _use_policy(moto_iam, iam.without_action(POLICY, action))
    with pytest.raises(Exception) as err:  # S3, Glue and Athena each raise their own kind
        _prod_path(moto_iam)
    assert action in str(err.value), f"{type(err.value).__name__}: {err.value}"
