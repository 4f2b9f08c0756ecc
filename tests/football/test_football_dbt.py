"""dbt/football without a warehouse: the snowflake target parses with no connection or credentials."""

from __future__ import annotations

import json

from dbt.cli.main import dbtRunner

from tasks.core.config import DBT_DIR


def test_dbt_parse_for_the_snowflake_target_needs_no_connection(tmp_path, monkeypatch):
    for name in ("SNOWFLAKE_ACCOUNT", "SNOWFLAKE_USER", "SNOWFLAKE_PASSWORD", "SNOWFLAKE_HOST"):
        monkeypatch.delenv(name, raising=False)
    project = DBT_DIR / "football"
    result = dbtRunner().invoke(["parse", "--project-dir", str(project), "--profiles-dir", str(project),
                                 "--target", "prod", "--target-path", str(tmp_path / "target"),
                                 "--log-path", str(tmp_path / "logs")])
    assert result.success, result.exception
    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    models = {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    assert set(models) == {"stg_football__standings", "stg_football__scorers", "fct_football_standings_history",
                           "fct_football_standings_current", "fct_football_top_scorers_current",
                           "fct_football_team_top_scorers"}
    assert models["fct_football_standings_history"]["config"]["materialized"] == "incremental"
    assert manifest["metadata"]["adapter_type"] == "snowflake"
