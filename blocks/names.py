"""The names of the block documents the flows load, defined once.

The same names exist in every environment (a laptop registers them with ``python -m blocks register``,
production with the same command), so no code branches on dev or prod to pick a block. Each group
module in ``blocks/`` saves the documents named here; the flows' settings take these as defaults; the
IAM policy, the docs and the tests read them from here.
"""

from __future__ import annotations

LAKE = "insightflow-lake"  # prefect-aws S3Bucket: the lake in production
AWS_CREDENTIALS = "insightflow-aws"  # prefect-aws AwsCredentials
ATHENA = "insightflow-athena"  # blocks.athena.AthenaTarget: dbt's Athena target and the Glue crawler
ATHENA_RESULTS = "insightflow-athena-results"  # prefect-aws S3Bucket: Athena query results
SNOWFLAKE = "insightflow-snowflake"  # prefect-snowflake SnowflakeConnector
FOOTBALL_DATA_TOKEN = "football-data-token"  # Secret: the football-data.org API token
ALERTS = "insightflow-alerts"  # the notification block every alert sends through
