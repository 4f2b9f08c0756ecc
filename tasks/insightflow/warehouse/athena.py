"""The environment dbt's ``prod`` (Athena) target reads, built from the Athena target and AWS credentials blocks.

``dbt/insightflow/profiles.yml`` reads every prod setting through ``env_var()``; this module is the one
place that maps blocks to those names. The returned dict holds credentials: pass it to the dbt
subprocess or runner (merged over ``os.environ``), never to a logger, an artifact or an exception.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from blocks import names
from tasks.core.config import DBT_DIR

if TYPE_CHECKING:
    from prefect_aws import AwsCredentials

    from blocks.athena import AthenaTarget

PROFILES_PATH = DBT_DIR / "insightflow" / "profiles.yml"

# The names dbt reads on Athena, matched to profiles.yml (prod target) and the staging sources'
# `schema:`; tests/tasks/insightflow/warehouse/test_athena.py checks both files. The region reaches dbt as AWS_DEFAULT_REGION.
PROD_TARGET_VARS = {
    "INSIGHTFLOW_ATHENA_S3_STAGING_DIR": "s3_staging_dir",
    "INSIGHTFLOW_ATHENA_S3_DATA_DIR": "s3_data_dir",
    "INSIGHTFLOW_ATHENA_SCHEMA": "athena_schema",
    "INSIGHTFLOW_ATHENA_WORK_GROUP": "work_group",
    "INSIGHTFLOW_GLUE_DATABASE": "glue_database",
}

# What a prod run prints after its summary: how to look at a mart through Athena (main() below).
ATHENA_QUERY_HINT = (
    "Warehouse: Athena (dbt's prod schema)\nQuery it, for example:\n  python -m tasks.insightflow.warehouse.athena "
    '"select * from fct_retail_sales_monthly order by month_start_date desc limit 10"'
)

_ENV_VAR = re.compile(r"""env_var\(\s*['"]([A-Za-z_][A-Za-z0-9_]*)['"]""")


def aws_environment(credentials: AwsCredentials, region: str | None = None) -> dict[str, str]:
    """AWS_* variables that make boto3 in a subprocess act as ``credentials`` does here.

    Keys stored in the block are passed on; a profile becomes AWS_PROFILE; an assume-role block is
    resolved to temporary keys now. A block with none of these passes no credentials, so the
    subprocess uses the same default chain (ECS task role, instance profile) this process does.
    """
    env: dict[str, str] = {}
    region = region or credentials.region_name
    if region:
        env["AWS_DEFAULT_REGION"] = env["AWS_REGION"] = region
    if credentials.aws_client_parameters.endpoint_url:
        env["AWS_ENDPOINT_URL"] = str(credentials.aws_client_parameters.endpoint_url)
    if credentials.assume_role_arn:
        frozen = credentials.get_boto3_session().get_credentials().get_frozen_credentials()
        env.update(
            AWS_ACCESS_KEY_ID=frozen.access_key,
            AWS_SECRET_ACCESS_KEY=frozen.secret_key,
            AWS_SESSION_TOKEN=frozen.token or "",
        )
    elif credentials.aws_access_key_id and credentials.aws_secret_access_key:
        env["AWS_ACCESS_KEY_ID"] = credentials.aws_access_key_id
        env["AWS_SECRET_ACCESS_KEY"] = credentials.aws_secret_access_key.get_secret_value()
        if credentials.aws_session_token:
            env["AWS_SESSION_TOKEN"] = credentials.aws_session_token
    elif credentials.profile_name:
        env["AWS_PROFILE"] = credentials.profile_name
    return {k: v for k, v in env.items() if v}


def dbt_prod_env(target: AthenaTarget, credentials: AwsCredentials) -> dict[str, str]:
    """Every variable dbt's prod target needs: the Athena settings plus AWS credentials. Contains secrets."""
    env = {name: str(getattr(target, attr)) for name, attr in PROD_TARGET_VARS.items()}
    env.update(aws_environment(credentials, region=target.region))
    return env


def load_dbt_prod_env(
    athena_block: str = names.ATHENA, credentials_block: str = names.AWS_CREDENTIALS
) -> dict[str, str]:
    """``dbt_prod_env`` from the blocks saved under these names."""
    from prefect_aws import AwsCredentials

    from blocks.athena import AthenaTarget

    return dbt_prod_env(AthenaTarget.load(athena_block, _sync=True), AwsCredentials.load(credentials_block, _sync=True))


def profile_env_vars(profiles: Path = PROFILES_PATH, target: str = "prod") -> set[str]:
    """The env_var() names one target of profiles.yml reads."""
    import yaml

    document = yaml.safe_load(profiles.read_text())
    profile = next(v for v in document.values() if isinstance(v, dict) and target in (v.get("outputs") or {}))
    return {name for value in profile["outputs"][target].values() for name in _ENV_VAR.findall(str(value))}


def main(argv: list[str] | None = None) -> int:
    """``python -m tasks.insightflow.warehouse.athena "SQL"``: run one query on Athena in dbt's prod schema, print the rows.

    Reads through the same blocks as the report. A query Athena refuses prints Athena's own error
    (``TABLE_NOT_FOUND: ...``) and exits 1, with no Python traceback.
    """
    import argparse

    from pyathena.error import Error as PyAthenaError

    from tasks.insightflow.report.publish import athena_query

    parser = argparse.ArgumentParser(prog="python -m tasks.insightflow.warehouse.athena", description="Query Athena.")
    parser.add_argument("sql", help="one Trino (Athena engine v3) statement")
    parser.add_argument("--athena-block", default=names.ATHENA)
    parser.add_argument("--credentials-block", default=names.AWS_CREDENTIALS)
    args = parser.parse_args(argv)
    try:
        rows = athena_query(args.athena_block, args.credentials_block, poll_interval_s=0.2)(args.sql)
    except PyAthenaError as exc:
        print(f"Athena: {exc}", file=sys.stderr)
        return 1
    if rows:
        columns = list(rows[0])
        widths = [max(len(n), *(len(str(r[n])) for r in rows)) for n in columns]
        print("  ".join(n.ljust(w) for n, w in zip(columns, widths, strict=True)))
        for row in rows:
            print("  ".join(str(row[n]).ljust(w) for n, w in zip(columns, widths, strict=True)))
    print(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
