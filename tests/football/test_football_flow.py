"""The football flow end to end against loopback stand-ins: sample → DuckDB marts, rate limits, no token, Snowflake."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
import sqlglot

from flows.football import football
from tasks.football_api import MissingTokenError
from tasks.football_sample import SAMPLE_TOKEN, SampleServer
from tests.football.conftest import fakesnow_connector
from tests.prefect_runs import settled_task_runs

COMPETITIONS = ["PL", "BL1"]


def _latest(lake: Path, endpoint: str, code: str) -> dict:
    files = sorted((lake / "raw/football" / endpoint / f"competition={code}").rglob("*.json"))
    return json.loads(files[-1].read_bytes())


def _expected_teams(lake: Path, code: str) -> dict[int, dict]:
    """Each team's current standing and top scorer, worked out from the landed JSON."""
    table = next(t for t in _latest(lake, "standings", code)["standings"] if t["type"] == "TOTAL")["table"]
    players = _latest(lake, "scorers", code)["scorers"]
    expected = {}
    for row in table:
        team_id = row["team"]["id"]
        mine = sorted((p for p in players if p["team"]["id"] == team_id),
                      key=lambda p: (-p["goals"], p["playedMatches"], p["player"]["name"], p["player"]["id"]))
        top = mine[0] if mine else None
        expected[team_id] = {
            "position": row["position"], "points": row["points"], "goals_for": row["goalsFor"],
            "goals_per_game": row["goalsFor"] / row["playedGames"],
            "top_scorer_name": top and top["player"]["name"], "top_scorer_goals": top and top["goals"],
            "top_scorer_goal_share": top and top["goals"] / row["goalsFor"],
        }
    return expected


def test_sample_flow_builds_marts_that_match_the_sample_json_and_keeps_history(prefect_server, tmp_path):
    home = tmp_path / "home"
    first = football(competitions=COMPETITIONS, sample=True, home=str(home))
    second = football(competitions=COMPETITIONS, sample=True, home=str(home))
    assert first["loaded"] == {"standings": 2, "scorers": 2} == second["loaded"]
    lake = home / "lake"

    # dbt-duckdb keeps this process's database instance open read-write; a read_only connect would clash.
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        assert con.execute("select count(*), count(distinct file_name) from raw.football_standings").fetchone() == (4, 4)
        history = con.execute("select competition_code, count(distinct snapshot_id) from football.fct_football_standings_history "
                              "group by 1 order by 1").fetchall()
        assert history == [("BL1", 2), ("PL", 2)]
        current_snapshots = con.execute("select distinct snapshot_id from football.fct_football_standings_current "
                                        "order by 1").fetchall()
        assert [r[0] for r in current_snapshots] == sorted(k for k in second["snapshots"] if "/standings/" in k)
        for code in COMPETITIONS:
            expected = _expected_teams(lake, code)
            rows = con.execute(
                "select team_id, position, points, goals_for, goals_per_game, top_scorer_name, top_scorer_goals, "
                "top_scorer_goal_share from football.fct_football_team_top_scorers where competition_code = ?",
                [code]).fetchall()
            assert len(rows) == len(expected)
            for team_id, position, points, goals_for, per_game, name, goals, share in rows:
                want = expected[team_id]
                assert (position, points, goals_for, name, goals) == (
                    want["position"], want["points"], want["goals_for"], want["top_scorer_name"], want["top_scorer_goals"])
                assert per_game == pytest.approx(want["goals_per_game"])
                assert share == pytest.approx(want["top_scorer_goal_share"]) if want["top_scorer_goals"] else share is None
            top = con.execute("select player_name, goals from football.fct_football_top_scorers_current "
                              "where competition_code = ? and scorer_rank = 1", [code]).fetchall()
            best = max(p["goals"] for p in _latest(lake, "scorers", code)["scorers"])
            assert {g for _, g in top} == {best}


def test_sample_flow_shows_each_dbt_node_as_a_completed_task_run_of_the_flow_run(prefect_server, tmp_path):
    home = tmp_path / "home"
    state = football(competitions=["PL"], sample=True, home=str(home), return_state=True)
    assert state.is_completed(), state.message

    target = home / "dbt" / "football-dev" / "target"  # dbt's own record of what it ran
    manifest = json.loads((target / "manifest.json").read_text())
    nodes = manifest["nodes"] | manifest.get("unit_tests", {})
    expected = sorted(f"{nodes[r['unique_id']]['resource_type']} {nodes[r['unique_id']]['name']}"
                      for r in json.loads((target / "run_results.json").read_text())["results"])
    runs = settled_task_runs(state.state_details.flow_run_id, at_least=len(expected))
    node_runs = [r for r in runs if r.name.split(" ", 1)[0] in {"model", "test", "unit_test", "seed", "snapshot"}]
    assert len(expected) > 10 and sorted(r.name for r in node_runs) == expected
    assert {r.state_name for r in node_runs} == {"Completed"}
    # run_dbt is called from the flow body here, not from a task: nothing to nest under
    assert not any(r.task_inputs.get("__parents__") for r in node_runs)


def test_three_competitions_on_a_ten_per_minute_budget_never_see_a_429(prefect_server, tmp_path, monkeypatch):
    monkeypatch.setenv("FOOTBALL_DATA_TOKEN", SAMPLE_TOKEN)
    with SampleServer(per_minute=10, window_s=3.0) as server:
        server.spend(7)  # a run earlier in the same minute: only three calls left for six requests
        result = football(competitions=["PL", "BL1", "SA"], football_base_url=server.url, token_block="",
                          home=str(tmp_path / "home"), run_dbt_build=False)
    assert len(result["snapshots"]) == 6
    assert server.throttled == 0
    assert [status for _, status in server.log] == [200] * 6


def test_flow_without_a_token_fails_before_any_request(prefect_server, tmp_path, monkeypatch):
    monkeypatch.delenv("FOOTBALL_DATA_TOKEN", raising=False)
    with SampleServer() as server:
        with pytest.raises(MissingTokenError, match="football-data-token"):
            football(football_base_url=server.url, token_block="football-data-token", home=str(tmp_path / "home"))
    assert server.log == []


def test_prod_flow_loads_snowflake_with_copy_into_and_builds_models_on_fakesnow(
        prefect_server, fakesnow_server, snowflake_env, tmp_path):
    from prefect_snowflake import SnowflakeConnector, SnowflakeCredentials

    connector = fakesnow_connector(fakesnow_server, "INSIGHTFLOW")
    SnowflakeConnector(credentials=SnowflakeCredentials(account="fakesnow", user="fake", password="snow"),
                       database="INSIGHTFLOW", warehouse="FAKE_WH", schema="RAW").save("football-test-snowflake",
                                                                                       overwrite=True)
    home = tmp_path / "home"
    # fakesnow reads file:// stages only, so the prod warehouse is fed from a local lake here.
    kwargs = dict(competitions=["PL"], sample=True, target="prod", lake_target="dev", home=str(home),
                  snowflake_block="football-test-snowflake")
    first = football(**kwargs)  # the full dbt build: views, tables, incremental (first run) and every test
    assert first["loaded"] == {"LOADED": 2}
    second = football(**kwargs, run_dbt_build=False)
    # PATTERN matches all four PL files; load history skips the two loaded by the first run.
    assert second["loaded"] == {"LOADED": 2, "LOAD_SKIPPED": 2}

    rows = connector.fetch_all("select count(*) from RAW.FOOTBALL_STANDINGS")
    connector.reset_cursors()
    assert rows == [(2,)]  # one row per standings file, each loaded once
    teams = connector.fetch_all("select team_name, position, top_scorer_goal_share "
                                "from FOOTBALL.FCT_FOOTBALL_TEAM_TOP_SCORERS order by position")
    connector.reset_cursors()
    table = next(t for t in json.loads(sorted((home / "lake/raw/football/standings").rglob("*.json"))[-1].read_bytes())
                 ["standings"] if t["type"] == "TOTAL")["table"]
    assert [(t[0], t[1]) for t in teams] == [(r["team"]["name"], r["position"]) for r in table]
    connector.close()

    compiled = sorted((home / "dbt/football-prod/target/compiled/football").rglob("*.sql"))
    assert len([p for p in compiled if p.parent.name in ("football", "marts")]) == 6  # every model compiled
    for path in compiled:
        sqlglot.parse_one(path.read_text(), read="snowflake")
