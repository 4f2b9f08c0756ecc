"""The ``snowflake`` block group: ``SnowflakeCredentials`` inside a ``SnowflakeConnector`` named ``insightflow-snowflake``.

Read from ``SNOWFLAKE_ACCOUNT``, ``SNOWFLAKE_USER``, ``SNOWFLAKE_ROLE``, ``SNOWFLAKE_WAREHOUSE``,
``SNOWFLAKE_DATABASE`` and either ``SNOWFLAKE_PASSWORD`` or ``SNOWFLAKE_PRIVATE_KEY_PATH`` (+
``SNOWFLAKE_PRIVATE_KEY_PASSPHRASE``); key-pair auth wins when both are set. ``SNOWFLAKE_SCHEMA``
(default ``RAW``) is the connector's default schema, where the football flow lands raw tables.
The password and passphrase are stored as secrets and never printed.
"""

from __future__ import annotations

from collections.abc import Mapping

from blocks import names
from blocks.registry import BlockPlan, GroupPlan, require

GROUP = "snowflake"
CONNECTOR_BLOCK = names.SNOWFLAKE
HINT = "set SNOWFLAKE_PASSWORD or SNOWFLAKE_PRIVATE_KEY_PATH for authentication; see docs/football.md"


def plan(env: Mapping[str, str]) -> GroupPlan:
    """The Snowflake connector block from the environment, or the variables still missing."""
    missing = require(
        env, "SNOWFLAKE_ACCOUNT", "SNOWFLAKE_USER", "SNOWFLAKE_ROLE", "SNOWFLAKE_WAREHOUSE", "SNOWFLAKE_DATABASE"
    )
    if not (env.get("SNOWFLAKE_PASSWORD") or env.get("SNOWFLAKE_PRIVATE_KEY_PATH")):
        missing.append("SNOWFLAKE_PASSWORD or SNOWFLAKE_PRIVATE_KEY_PATH")
    if missing:
        return GroupPlan(GROUP, missing=missing, hint=HINT)

    from prefect_snowflake import SnowflakeConnector, SnowflakeCredentials

    if env.get("SNOWFLAKE_PRIVATE_KEY_PATH"):
        auth = {"private_key_path": env["SNOWFLAKE_PRIVATE_KEY_PATH"]}
        if env.get("SNOWFLAKE_PRIVATE_KEY_PASSPHRASE"):
            auth["private_key_passphrase"] = env["SNOWFLAKE_PRIVATE_KEY_PASSPHRASE"]
    else:
        auth = {"password": env["SNOWFLAKE_PASSWORD"]}
    credentials = SnowflakeCredentials(
        account=env["SNOWFLAKE_ACCOUNT"], user=env["SNOWFLAKE_USER"], role=env["SNOWFLAKE_ROLE"], **auth
    )
    connector = SnowflakeConnector(
        credentials=credentials,
        database=env["SNOWFLAKE_DATABASE"],
        warehouse=env["SNOWFLAKE_WAREHOUSE"],
        schema=env.get("SNOWFLAKE_SCHEMA") or "RAW",
    )
    return GroupPlan(GROUP, blocks=[BlockPlan(CONNECTOR_BLOCK, connector)])
