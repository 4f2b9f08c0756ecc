"""dbt/football without a warehouse: the snowflake target parses with no connection or credentials."""

from __future__ import annotations

import json

from dbt.cli.main import dbtRunner

from tasks.config import DBT_DIR


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
    materialized = {name: node["config"]["materialized"] for name, node in models.items()}
    # Everything that grows with the history is incremental; the rest is one snapshot per season or a view.
    assert materialized == {
        "stg_football__standings": "incremental", "stg_football__scorers": "incremental",
        "stg_football__snapshots": "view", "fct_football_snapshots": "view",
        "fct_football_standings_history": "incremental", "fct_football_standings_current": "incremental",
        "fct_football_top_scorers_current": "incremental", "fct_football_team_top_scorers": "table",
    }
    assert manifest["metadata"]["adapter_type"] == "snowflake"
    tests = [n for n in manifest["nodes"].values() if n["resource_type"] == "test"]
    scoped = {(n["attached_node"] or "").split(".")[-1] for n in tests if n["config"].get("where") == "__football_new_rows__"}
    assert {"stg_football__standings", "stg_football__scorers", "fct_football_standings_history"} <= scoped
