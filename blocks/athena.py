"""``AthenaTarget``: where the production (Athena) half of InsightFlow catalogs the lake and builds dbt models."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field


class AthenaTarget(Block):
    """The Glue database, Athena work group and S3 locations the prod flow and dbt's prod target use."""

    _block_type_name = "InsightFlow Athena Target"
    _block_type_slug = "insightflow-athena-target"
    _description = (
        "Where the InsightFlow prod run registers the raw lake tables (Glue) and where dbt builds its "
        "models on Athena. Credentials live in the AWS Credentials block, not here."
    )

    region: str = Field(
        default="us-east-1",
        description="AWS region of the Glue catalog, Athena work group and buckets (what moto/localstack use by default).",
    )
    work_group: str = Field(
        default="primary",
        description="Athena work group dbt runs queries in; 'primary' exists in every account.",
    )
    glue_database: str = Field(
        default="insightflow_raw",
        description="Glue database holding one external table per raw dataset (iowrt, iowrt_3d, fuelprice, msic).",
    )
    athena_schema: str = Field(
        default="insightflow",
        title="Athena schema",
        description="Glue database (Athena schema) dbt builds its staging and mart models in.",
    )
    s3_staging_dir: str = Field(
        default="s3://insightflow-athena-results/staging/",
        title="S3 staging dir",
        description="s3:// folder Athena writes query results to (dbt-athena's s3_staging_dir).",
    )
    s3_data_dir: str = Field(
        default="s3://insightflow-lake/dbt/",
        title="S3 data dir",
        description="s3:// folder dbt-athena writes table data to (dbt-athena's s3_data_dir).",
    )
    crawler_name: str | None = Field(
        default=None,
        description="Glue crawler over the lake's raw/ folder, for the 'crawler' catalog mode; leave empty to register partitions directly.",
    )
