"""The dbt project compiles for the Athena (prod) target into SQL that Trino can parse.

dbt-athena's compile needs AWS even when nothing runs: it fills its relation cache from Glue (after
an STS call for the account id) and ``is_incremental()`` looks the model up. moto's in-process
``mock_aws`` answers those calls with an empty catalog plus one Glue table for the incremental
fact, so the incremental branch is the one compiled; no request leaves the process.
"""

from __future__ import annotations

from tests.support import REPO_ROOT
from pathlib import Path

import pytest
import sqlglot
from dbt.cli.main import dbtRunner, dbtRunnerResult

# Each dbt invocation parses the project (seconds of CPU); generous bound for a loaded machine.
# Integration, not unit: it compiles and parses the project with real dbt (~30-60 s).
pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

DBT_DIR = REPO_ROOT / "dbt" / "insightflow"
SCHEMA = "insightflow_ci"
GLUE_SOURCE_DATABASE = "insightflow_raw_ci"

PROD_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "INSIGHTFLOW_ATHENA_S3_STAGING_DIR": "s3://insightflow-ci/athena-results/",
    "INSIGHTFLOW_ATHENA_S3_DATA_DIR": "s3://insightflow-ci/warehouse/",
    "INSIGHTFLOW_ATHENA_SCHEMA": SCHEMA,
    "INSIGHTFLOW_GLUE_DATABASE": GLUE_SOURCE_DATABASE,
    # must not leak into prod SQL even when set
    "INSIGHTFLOW_LAKE_DIR": "/tmp/should-not-appear/lake",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "DO_NOT_TRACK": "1",
}


def _invoke(args: list[str], work: Path) -> dbtRunnerResult:
    return dbtRunner().invoke(
        [
            *args,
            "--project-dir",
            str(DBT_DIR),
            "--profiles-dir",
            str(DBT_DIR),
            "--target",
            "prod",
            "--target-path",
            str(work / "target"),
            "--log-path",
            str(work / "logs"),
            "--quiet",
        ]
    )


@pytest.fixture(scope="module")
def prod(tmp_path_factory) -> dict:
    """The parsed manifest, and unique_id -> (resource type, compiled SQL) for every model and data test."""
    import boto3
    from moto import mock_aws

    work = tmp_path_factory.mktemp("dbt_prod")
    with pytest.MonkeyPatch.context() as mp:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
            mp.delenv(name, raising=False)
        for key, value in PROD_ENV.items():
            mp.setenv(key, value)

        parsed = _invoke(["parse"], work)
        assert parsed.success, parsed.exception

        with mock_aws():
            glue = boto3.client("glue", region_name="us-east-1")
            glue.create_database(DatabaseInput={"Name": SCHEMA})
            glue.create_table(
                DatabaseName=SCHEMA,
                TableInput={
                    "Name": "fct_retail_sales_monthly",
                    "TableType": "EXTERNAL_TABLE",
                    "StorageDescriptor": {"Columns": [{"Name": "month_start_date", "Type": "date"}]},
                    "PartitionKeys": [{"Name": "year", "Type": "int"}, {"Name": "month", "Type": "int"}],
                },
            )
            # unit tests are left out: compiling them asks Glue for their inputs' columns
            compiled = _invoke(["compile", "--select", "resource_type:model", "resource_type:test"], work)
            as_of = _invoke(["compile", "--inline", "{{ retail_sales_monthly_as_of('2025-10-01 00:00:00') }}"], work)
    assert compiled.success, compiled.exception
    assert as_of.success, as_of.exception
    return {
        "as_of": as_of.result.results[0].node.compiled_code,
        "manifest": parsed.result,
        "manifest_path": work / "target" / "manifest.json",
        "compiled": {r.node.unique_id: (str(r.node.resource_type), r.node.compiled_code) for r in compiled.result},
    }


@pytest.fixture
def prod_compiled(prod) -> dict[str, tuple[str, str]]:
    return prod["compiled"]


def test_prod_sources_are_glue_tables_after_a_parse_without_aws(prod):
    sources = {s.name: s.relation_name for s in prod["manifest"].sources.values()}
    assert sources == {
        name: f'"awsdatacatalog"."{GLUE_SOURCE_DATABASE}"."{name}"'
        for name in ("iowrt", "iowrt_3d", "fuelprice", "msic", "iowrt_history", "iowrt_3d_history")
    }


def test_every_model_and_data_test_compiles(prod_compiled):
    kinds = [kind for kind, _ in prod_compiled.values()]
    assert kinds.count("model") == 20
    assert kinds.count("test") >= 100


def test_compiled_prod_sql_parses_as_trino(prod_compiled):
    failures = {}
    for unique_id, (_, sql) in prod_compiled.items():
        try:
            sqlglot.parse_one(sql, read="trino", error_level=sqlglot.ErrorLevel.RAISE)
        except sqlglot.errors.ParseError as exc:
            failures[unique_id] = str(exc)[:300]
    assert not failures


def test_prod_sql_reads_glue_tables_not_the_local_lake(prod_compiled):
    sql = {uid: code for uid, (_, code) in prod_compiled.items()}
    assert not [uid for uid, code in sql.items() if "read_parquet" in code or "should-not-appear" in code]
    stg_iowrt = sql["model.insightflow.stg_iowrt"]
    assert f'from "awsdatacatalog"."{GLUE_SOURCE_DATABASE}"."iowrt"' in stg_iowrt
    # every landed version: the Glue table the catalog step registers over history/iowrt_3d/
    versions = sql["model.insightflow.stg_iowrt_3d_versions"]
    assert f'from "awsdatacatalog"."{GLUE_SOURCE_DATABASE}"."iowrt_3d_history"' in versions


def test_prod_sql_uses_trino_dialect_macros(prod_compiled):
    sql = {uid: code for uid, (_, code) in prod_compiled.items()}
    assert "unnest(" in sql["model.insightflow.dim_date"] and "sequence(" in sql["model.insightflow.dim_date"]
    assert "generate_series" not in sql["model.insightflow.dim_date"]
    assert "date_format(" in sql["model.insightflow.dim_date"]
    # the incremental branch, compiled because the table exists in Glue
    fct = sql["model.insightflow.fct_retail_sales_monthly"]
    assert f'from "awsdatacatalog"."{SCHEMA}"."fct_retail_sales_monthly"' in fct
    assert "date_add('month', -3, max(month_start_date))" in fct


def test_as_of_macro_compiles_to_trino_over_the_vintages_mart(prod):
    sql = prod["as_of"]
    sqlglot.parse_one(sql, read="trino", error_level=sqlglot.ErrorLevel.RAISE)
    assert f'from "awsdatacatalog"."{SCHEMA}"."fct_retail_sales_vintages"' in sql
    assert "cast('2025-10-01 00:00:00' as timestamp)" in sql


def test_prod_asset_keys_chain_the_s3_lake_datasets_through_staging_to_the_athena_marts(prod):
    """What the node reporter would emit on Athena: sources keyed as the S3 lake datasets, models as Athena relations."""
    from tasks.core.dbt.assets import node_asset, read_manifest

    manifest = read_manifest(prod["manifest_path"])
    lake = {f"{src}.{name}": f"s3://insightflow-lake/raw/{name}" for src, name in SOURCES}
    entries = {**manifest["sources"], **manifest["nodes"]}
    adapter = manifest["metadata"]["adapter_type"]

    def key(unique_id: str) -> str | None:
        resource = node_asset(entries[unique_id], adapter, lake)
        return resource and resource["prefect.resource.id"]

    def upstream(unique_id: str) -> set[str]:
        return {key(u) for u in entries[unique_id]["depends_on"]["nodes"]} - {None}

    athena = f"athena://awsdatacatalog/{SCHEMA}"
    for src, name in SOURCES:
        assert key(f"source.insightflow.{src}.{name}") == f"s3://insightflow-lake/raw/{name}"
    assert upstream("model.insightflow.stg_iowrt") == {"s3://insightflow-lake/raw/iowrt"}
    assert upstream("model.insightflow.stg_fuelprice") == {"s3://insightflow-lake/raw/fuelprice"}
    assert key("model.insightflow.fct_fuel_retail_correlation") == f"{athena}/fct_fuel_retail_correlation"
    assert upstream("model.insightflow.fct_headline_vs_fuel_monthly") == {
        f"{athena}/int_fuelprice_monthly_changes",
        f"{athena}/int_iowrt_monthly_growth",
    }
    # without a key from the pipeline a source has none: never one made of its relation or SQL
    assert node_asset(entries["source.insightflow.dosm.iowrt"], adapter, {}) is None


SOURCES = [("dosm", "iowrt"), ("dosm", "iowrt_3d"), ("dosm", "msic"), ("datagovmy", "fuelprice")]


def test_source_freshness_on_athena_sends_trino_sql_judged_at_the_as_of_date(tmp_path):
    """``dbt source freshness`` on the prod target, as the flow runs it (tasks.core.dbt.runner.source_freshness).

    moto records each query Athena receives but runs none (every result is empty, so dbt reports a
    runtime error per source): the check is the SQL itself, one query per source with a freshness
    policy in the YAML, reading its Glue table with the YAML's loaded_at_field, judged at the as-of
    date (macros/collect_freshness.sql), and valid Trino.
    """
    import boto3
    import yaml
    from moto import mock_aws
    from moto.athena.models import athena_backends
    from moto.core import DEFAULT_ACCOUNT_ID

    from tasks.core.dbt.runner import source_freshness

    expected = {}
    for path in (DBT_DIR / "models" / "staging").glob("*/_*__sources.yml"):
        for source in yaml.safe_load(path.read_text())["sources"]:
            for table in source["tables"]:
                config = {**(source.get("config") or {}), **(table.get("config") or {})}
                if config.get("freshness"):
                    expected[table["name"]] = config["loaded_at_field"]
    assert sorted(expected) == ["fuelprice", "iowrt", "iowrt_3d"]

    env = {**PROD_ENV, "INSIGHTFLOW_FRESHNESS_AS_OF": "2025-11-05"}
    with pytest.MonkeyPatch.context() as mp, mock_aws():
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
            mp.delenv(name, raising=False)
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="insightflow-ci")
        rows = source_freshness("insightflow", "prod", env, work_dir=tmp_path)
        queries = [e.query for e in athena_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].executions.values()]

    assert sorted(r["table"] for r in rows) == sorted(expected)
    assert {r["status"] for r in rows} == {"runtime error"}  # moto answers no rows
    by_table = {}
    for sql in queries:
        sqlglot.parse_one(sql, read="trino", error_level=sqlglot.ErrorLevel.RAISE)
        table = sql.rsplit(".", 1)[-1].strip().strip('"')
        by_table[table] = sql
    assert sorted(by_table) == sorted(expected)
    for table, loaded_at in expected.items():
        sql = " ".join(by_table[table].split())
        assert f"max({loaded_at}) as max_loaded_at" in sql, sql
        assert "timestamp '2025-11-05 00:00:00' as snapshotted_at" in sql, sql
        assert f'from "awsdatacatalog"."{GLUE_SOURCE_DATABASE}"."{table}"' in sql, sql
