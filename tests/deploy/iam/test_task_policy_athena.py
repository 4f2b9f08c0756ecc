"""The task role's policy with dbt on Athena: the whole prod path, dbt included, run as the task user.

tests/deploy/iam/test_task_policy.py runs the prod path on an enforcing moto up to dbt (moto's Athena
runs no SQL). Here the enforcing server is the Athena stand-in (standins/aws): moto, with Athena
answered over DuckDB and acting with the caller's own keys, as real Athena does, for its reads of the
lake, its CTAS writes under ``dbt/``, its query results and its Glue calls. So moto judges those calls
by the task policy too, and Athena's own actions are checked against the work group's ARN.

The task user runs the prod flow with dbt build, source freshness and the report. Every AWS call made in
this process (the flow's, dbt-athena's and PyAthena's) is recorded and checked against the policy's real
ARNs, which moto cannot check for Glue. Then, with the lake's ``dbt/`` prefix taken out of the policy,
the run fails with Athena's permission error naming the S3 path, and the raw data it landed stays.
"""

from __future__ import annotations

import copy

import pytest
from botocore.exceptions import ClientError

from tests.deploy.iam.test_task_policy import (
    LAKE,
    NOT_EXERCISED_ON_MOTO,
    OTHER,
    POLICY,
    RESULTS,
    _client,
    _denied_calls,
    _register_blocks,
    _use_policy,
    task_user_server,
)
from tests.support import iam

pytestmark = [pytest.mark.aws, pytest.mark.usefixtures("prefect_server"), pytest.mark.timeout(1800)]

# What NOT_EXERCISED_ON_MOTO says only dbt-athena or PyAthena calls: seen here, from this process.
DBT_ATHENA_ACTIONS = {a for a, why in NOT_EXERCISED_ON_MOTO.items() if why.startswith(("dbt-athena", "PyAthena"))}


@pytest.fixture(scope="module")
def standin_iam():
    """An enforcing Athena stand-in with the buckets, an admin and the task user; yields (url, admin, task)."""
    with iam.enforcing_moto(athena=True) as url:
        yield task_user_server(url, [LAKE, RESULTS, OTHER], iam.STANDIN_WIDENS)


def _start_from_nothing(standin_iam) -> None:
    """Empty both buckets and drop both Glue databases (as the admin): each test's run starts cold."""
    url, admin, _ = standin_iam
    s3, glue = _client(url, "s3", admin), _client(url, "glue", admin)
    for bucket in (LAKE, RESULTS):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                s3.delete_object(Bucket=bucket, Key=obj["Key"])
    for database in ("prod_raw", "insightflow"):
        try:
            glue.delete_database(Name=database)
        except glue.exceptions.EntityNotFoundException:
            pass


def _run_prod(tmp_path):
    from flows.insightflow import insightflow

    return insightflow(target="prod", settings={"sample": True, "home": str(tmp_path)}, return_state=True)


def test_the_task_user_runs_the_prod_flow_with_dbt_on_athena_and_every_call_is_allowed(
    standin_iam, monkeypatch, tmp_path
):
    url, admin, _ = standin_iam
    _use_policy(standin_iam, POLICY, iam.STANDIN_WIDENS)
    _start_from_nothing(standin_iam)
    _register_blocks(standin_iam, monkeypatch)
    with iam.recording() as calls:
        state = _run_prod(tmp_path)
    assert state.is_completed(), state.message
    result = state.result()
    assert result["dbt"] and result["dbt"] != "skipped", result
    assert result["report"], result

    # dbt wrote its tables as the task user: under the lake's dbt/ prefix, catalogued in its schema.
    glue, s3 = _client(url, "glue", admin), _client(url, "s3", admin)
    tables = {t["Name"]: t for t in glue.get_tables(DatabaseName="insightflow")["TableList"]}
    assert {"dim_date", "dim_msic_group", "fct_retail_sales_monthly"} <= tables.keys()
    location = tables["fct_retail_sales_monthly"]["StorageDescriptor"]["Location"]
    assert location.startswith(f"s3://{LAKE}/dbt/"), location
    written = s3.list_objects_v2(Bucket=LAKE, Prefix=location.removeprefix(f"s3://{LAKE}/"))
    assert written.get("KeyCount", 0) > 0, location

    operations = {(c.service, c.operation) for c in calls}
    assert {("athena", "StartQueryExecution"), ("athena", "GetQueryResults"), ("glue", "GetTable")} <= operations
    assert iam.unmapped(calls) == []
    assert _denied_calls(calls) == []
    used = {action for call in calls for action, _ in iam.needs(call, "primary")}
    assert iam.actions(POLICY) >= used, sorted(used - iam.actions(POLICY))
    # dbt-athena's and PyAthena's own calls, which the moto-only test can only explain, are made and allowed
    # (all but StopQueryExecution: nothing is cancelled).
    print(f"\nAWS actions of the prod run with dbt: {len(used)}; dbt-athena's: {sorted(DBT_ATHENA_ACTIONS & used)}")
    assert DBT_ATHENA_ACTIONS - {"athena:StopQueryExecution"} <= used, sorted(DBT_ATHENA_ACTIONS - used)


def test_athena_authorizes_its_actions_on_the_work_group(standin_iam):
    url, admin, task = standin_iam
    _use_policy(standin_iam, POLICY, iam.STANDIN_WIDENS)
    _client(url, "athena", admin).create_work_group(Name="someone-elses", Configuration={})
    athena = _client(url, "athena", task)
    results = {"OutputLocation": f"s3://{RESULTS}/staging/"}
    started = athena.start_query_execution(QueryString="select 1", WorkGroup="primary", ResultConfiguration=results)
    assert athena.get_query_execution(QueryExecutionId=started["QueryExecutionId"])["QueryExecution"]
    with pytest.raises(ClientError) as err:  # the policy names the primary work group only
        athena.start_query_execution(QueryString="select 1", WorkGroup="someone-elses", ResultConfiguration=results)
    assert err.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "athena:StartQueryExecution" in err.value.response["Error"]["Message"]
    forged = _client(url, "athena", (task[0], "not-the-secret"))
    with pytest.raises(ClientError) as err:
        forged.get_work_group(WorkGroup="primary")
    assert err.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_without_the_dbt_prefix_athena_refuses_the_ctas_as_the_caller(standin_iam, monkeypatch, tmp_path):
    url, admin, _ = standin_iam
    policy = copy.deepcopy(POLICY)
    (lake_objects,) = [s for s in policy["Statement"] if s["Sid"] == "LakeObjects"]
    lake_objects["Resource"] = [r for r in lake_objects["Resource"] if not r.endswith("/dbt/*")]
    _use_policy(standin_iam, policy, iam.STANDIN_WIDENS)
    _start_from_nothing(standin_iam)
    _register_blocks(standin_iam, monkeypatch)
    state = _run_prod(tmp_path)
    assert state.is_failed(), state
    message = state.message
    print(f"\nthe failed run says: {message}")
    assert "dbt build of project 'insightflow' failed" in message, message
    assert f"PERMISSION_DENIED: Permission denied on S3 path: s3://{LAKE}/dbt/" in message, message
    # Athena ran the CTAS as the task user, and moto refused the write under dbt/ as IAM would.
    s3 = _client(url, "s3", admin)
    assert not s3.list_objects_v2(Bucket=LAKE, Prefix="dbt/").get("KeyCount"), "a table was written anyway"
    # What the run had landed before dbt stays.
    assert s3.list_objects_v2(Bucket=LAKE, Prefix="raw/iowrt/").get("KeyCount", 0) > 0
