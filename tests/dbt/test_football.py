"""dbt/football: the snowflake target parses with no connection or credentials; test scoping on DuckDB."""

from __future__ import annotations

import json

import duckdb
import pytest
from dbt.cli.main import dbtRunner

from tasks.football.warehouse import dbt_build_args
from tasks.core.config import DBT_DIR
from tasks.core.dbt.runner import DbtBuildError, run_dbt
from tasks.core.lake import LocalLake
from tasks.football.api import FetchSession
from tasks.football.load import load_duckdb
from tasks.football.sample.server import SampleServer
from tasks.football.sample.data import SAMPLE_TOKEN
from tasks.football.snapshots import mark_synced, plan_sync
from tests.support.football import sample_tick

pytestmark = pytest.mark.integration


def test_dbt_parse_for_the_snowflake_target_needs_no_connection(tmp_path, monkeypatch):
    for name in ("SNOWFLAKE_ACCOUNT", "SNOWFLAKE_USER", "SNOWFLAKE_PASSWORD", "SNOWFLAKE_HOST"):
        monkeypatch.delenv(name, raising=False)
    project = DBT_DIR / "football"
    result = dbtRunner().invoke(
        [
            "parse",
            "--project-dir",
            str(project),
            "--profiles-dir",
            str(project),
            "--target",
            "prod",
            "--target-path",
            str(tmp_path / "target"),
            "--log-path",
            str(tmp_path / "logs"),
        ]
    )
    assert result.success, result.exception
    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    models = {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    materialized = {name: node["config"]["materialized"] for name, node in models.items()}
    # Everything that grows with the history is incremental; the rest is one snapshot per season or a view.
    assert materialized == {
        "stg_football__standings": "incremental",
        "stg_football__scorers": "incremental",
        "stg_football__snapshots": "view",
        "fct_football_snapshots": "view",
        "fct_football_standings_history": "incremental",
        "fct_football_standings_current": "incremental",
        "fct_football_top_scorers_current": "incremental",
        "fct_football_team_top_scorers": "table",
    }
    assert manifest["metadata"]["adapter_type"] == "snowflake"
    tests = [n for n in manifest["nodes"].values() if n["resource_type"] == "test"]
    scoped = {
        (n["attached_node"] or "").split(".")[-1] for n in tests if n["config"].get("where") == "__football_new_rows__"
    }
    assert {"stg_football__standings", "stg_football__scorers", "fct_football_standings_history"} <= scoped


def test_data_tests_check_only_the_newest_load_unless_a_full_check_is_asked(tmp_path):
    lake, warehouse, work = LocalLake(tmp_path / "lake"), tmp_path / "warehouse.duckdb", tmp_path / "dbt"
    env = {"INSIGHTFLOW_WAREHOUSE_PATH": str(warehouse)}

    def changed_tick(server, session, args):
        plan = plan_sync(lake, sample_tick(lake, server, session), "dev", None)
        load_duckdb(lake, warehouse, plan.keys, plan.snapshots)
        summary = run_dbt("football", "dev", env, args=args, work_dir=work, in_prefect=False)
        mark_synced(lake, plan, None)
        return summary

    with SampleServer(per_minute=1000) as server:
        session = FetchSession(root=server.url, token=SAMPLE_TOKEN)
        server.play(1)
        changed_tick(server, session, dbt_build_args(None, full_check=False, full_refresh=False))
        with duckdb.connect(str(warehouse)) as con:  # damage a row of the first load: won + draw + lost != played
            con.execute(
                "update football_staging.stg_football__standings set won = won + 1 "
                "where table_type = 'TOTAL' and position = 1"
            )
        server.play(2)
        summary = changed_tick(server, session, dbt_build_args(None, full_check=False, full_refresh=False))
        session.close()
    checked = {n["name"]: n["status"] for n in summary.nodes}
    assert checked["assert_standings_results_add_up_to_games_played"] == "pass"  # the damaged row is an old load
    with pytest.raises(DbtBuildError, match="assert_standings_results_add_up_to_games_played fail"):
        run_dbt(
            "football",
            "dev",
            env,
            args=dbt_build_args(None, full_check=True, full_refresh=False),
            work_dir=work,
            in_prefect=False,
        )
