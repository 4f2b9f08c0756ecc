"""The football flow end to end against loopback stand-ins: sample → DuckDB marts, rate limits, no token, Snowflake,
and what a tick costs when nothing changed (no landing, no load, no dbt, no warehouse connection)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
import sqlglot

from flows.football import football
from tasks.football.api import MissingTokenError
from tasks.football.sample.data import SAMPLE_TOKEN, standings
from tasks.football.sample.server import SampleServer
from tests.support.football import fakesnow_connector
from tests.support.prefect_runs import asset_events, asset_graph, reaches, settled_task_runs

pytestmark = pytest.mark.integration

COMPETITIONS = ["PL", "BL1"]


def _latest(lake: Path, endpoint: str, code: str) -> dict:
    files = sorted((lake / "raw/football" / endpoint / f"competition={code}").rglob("*Z.json"))  # not the manifests
    return json.loads(files[-1].read_bytes())


def _expected_teams(lake: Path, code: str) -> dict[int, dict]:
    """Each team's current standing and top scorer, worked out from the landed JSON."""
    table = next(t for t in _latest(lake, "standings", code)["standings"] if t["type"] == "TOTAL")["table"]
    players = _latest(lake, "scorers", code)["scorers"]
    expected = {}
    for row in table:
        team_id = row["team"]["id"]
        mine = sorted(
            (p for p in players if p["team"]["id"] == team_id),
            key=lambda p: (-p["goals"], p["playedMatches"], p["player"]["name"], p["player"]["id"]),
        )
        top = mine[0] if mine else None
        expected[team_id] = {
            "position": row["position"],
            "points": row["points"],
            "goals_for": row["goalsFor"],
            "goals_per_game": row["goalsFor"] / row["playedGames"],
            "top_scorer_name": top and top["player"]["name"],
            "top_scorer_goals": top and top["goals"],
            "top_scorer_goal_share": top and top["goals"] / row["goalsFor"],
        }
    return expected


def test_sample_flow_builds_marts_that_match_the_sample_json_and_keeps_history(prefect_server, tmp_path):
    home = tmp_path / "home"
    first = football(competitions=COMPETITIONS, settings={"sample": True, "home": str(home)})
    second = football(competitions=COMPETITIONS, settings={"sample": True, "home": str(home)})
    assert first["loaded"] == {"standings": 2, "scorers": 2, "snapshots": 4}
    assert (second["snapshots"], second["loaded"], second["dbt"]) == ([], None, None)  # the same sample again
    lake = home / "lake"

    # dbt-duckdb keeps this process's database instance open read-write; a read_only connect would clash.
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        assert con.execute("select count(*), count(distinct file_name) from raw.football_standings").fetchone() == (
            2,
            2,
        )
        history = con.execute(
            "select competition_code, count(distinct snapshot_id) from football.fct_football_standings_history "
            "group by 1 order by 1"
        ).fetchall()
        assert history == [("BL1", 1), ("PL", 1)]
        current_snapshots = con.execute(
            "select distinct snapshot_id from football.fct_football_standings_current order by 1"
        ).fetchall()
        assert [r[0] for r in current_snapshots] == sorted(k for k in first["snapshots"] if "/standings/" in k)
        for code in COMPETITIONS:
            expected = _expected_teams(lake, code)
            rows = con.execute(
                "select team_id, position, points, goals_for, goals_per_game, top_scorer_name, top_scorer_goals, "
                "top_scorer_goal_share from football.fct_football_team_top_scorers where competition_code = ?",
                [code],
            ).fetchall()
            assert len(rows) == len(expected)
            for team_id, position, points, goals_for, per_game, name, goals, share in rows:
                want = expected[team_id]
                assert (position, points, goals_for, name, goals) == (
                    want["position"],
                    want["points"],
                    want["goals_for"],
                    want["top_scorer_name"],
                    want["top_scorer_goals"],
                )
                assert per_game == pytest.approx(want["goals_per_game"])
                assert (
                    share == pytest.approx(want["top_scorer_goal_share"]) if want["top_scorer_goals"] else share is None
                )
            top = con.execute(
                "select player_name, goals from football.fct_football_top_scorers_current "
                "where competition_code = ? and scorer_rank = 1",
                [code],
            ).fetchall()
            best = max(p["goals"] for p in _latest(lake, "scorers", code)["scorers"])
            assert {g for _, g in top} == {best}


def assert_football_chain(events: list[dict], home: Path, code: str, raw_table: str, mart_prefix: str) -> None:
    """Each endpoint's URL → its lake dataset → the warehouse raw table → staging → mart → the standings report."""
    graph = asset_graph(events)
    lake = f"file://{home}/lake"
    report = f"{lake}/reports/football/latest.md"
    for endpoint, mart in (
        ("standings", "fct_football_standings_current"),
        ("scorers", "fct_football_top_scorers_current"),
    ):
        source = f"http://127.0.0.1/v4/competitions/{code}/{endpoint}"  # the sample server, port and ?season= left out
        table = raw_table.format(table=f"football_{endpoint}")
        table = next((k for k in graph if k.lower() == table.lower()), table)  # Snowflake upper-cases names
        mart = next((k for k in graph if k.lower() == (mart_prefix + mart).lower()), mart_prefix + mart)
        assert graph[f"{lake}/raw/football/{endpoint}"] == {source}
        assert f"{lake}/raw/football/{endpoint}" in graph[table]
        path = reaches(graph, table, mart)
        assert path and "stg_football__" in path[1], path
        assert reaches(graph, source, report), endpoint
    assert graph[report] and all(k.lower().startswith(mart_prefix.lower()) for k in graph[report])
    keys = {e["resource"]["prefect.resource.id"] for e in events}
    assert not [k for k in keys if "(" in k or "select" in k.lower() or "competition=" in k or "?" in k]


def test_sample_flow_shows_each_dbt_node_as_a_completed_task_run_of_the_flow_run(prefect_server, tmp_path):
    home = tmp_path / "home"
    state = football(competitions=["PL"], settings={"sample": True, "home": str(home)}, return_state=True)
    assert state.is_completed(), state.message

    target = home / "dbt" / "football-dev" / "target"  # dbt's own record of what it ran
    manifest = json.loads((target / "manifest.json").read_text())
    nodes = manifest["nodes"] | manifest.get("unit_tests", {})
    expected = sorted(
        f"{nodes[r['unique_id']]['resource_type']} {nodes[r['unique_id']]['name']}"
        for r in json.loads((target / "run_results.json").read_text())["results"]
    )
    runs = settled_task_runs(state.state_details.flow_run_id, at_least=len(expected))
    node_runs = [r for r in runs if r.name.split(" ", 1)[0] in {"model", "test", "unit_test", "seed", "snapshot"}]
    assert len(expected) > 10 and sorted(r.name for r in node_runs) == expected
    assert {r.state_name for r in node_runs} == {"Completed"}
    # run_dbt is called from the flow body here, not from a task: nothing to nest under
    assert not any(r.task_inputs.get("__parents__") for r in node_runs)

    # ...and the run's asset events chain each endpoint to the report, through DuckDB's raw tables
    report = f"file://{home}/lake/reports/football/latest.md"
    events = asset_events(state.state_details.flow_run_id, expect=(report,))
    assert_football_chain(events, home, "PL", "duckdb://warehouse/raw/{table}", "duckdb://warehouse/football/")


def test_three_competitions_on_a_ten_per_minute_budget_never_see_a_429(prefect_server, tmp_path, monkeypatch):
    monkeypatch.setenv("FOOTBALL_DATA_TOKEN", SAMPLE_TOKEN)
    with SampleServer(per_minute=10, window_s=3.0) as server:
        server.spend(7)  # a run earlier in the same minute: only three calls left for six requests
        result = football(
            competitions=["PL", "BL1", "SA"],
            settings={
                "football_base_url": server.url,
                "token_block": "",
                "home": str(tmp_path / "home"),
                "run_dbt_build": False,
            },
        )
    assert len(result["snapshots"]) == 6
    assert server.throttled == 0
    assert [status for _, status in server.log] == [200] * 6


def test_flow_without_a_token_fails_before_any_request(prefect_server, tmp_path, monkeypatch):
    monkeypatch.delenv("FOOTBALL_DATA_TOKEN", raising=False)
    with SampleServer() as server, pytest.raises(MissingTokenError, match="football-data-token"):
        football(
            settings={
                "football_base_url": server.url,
                "token_block": "football-data-token",
                "home": str(tmp_path / "home"),
            }
        )
    assert server.log == []


def _expected_table(played: int) -> list[tuple[int, int, int]]:
    """(position, team id, points) of the sample's PL table after ``played`` matchdays, straight from the sample."""
    table = next(t for t in standings("PL", played=played)["standings"] if t["type"] == "TOTAL")["table"]
    return [(r["position"], r["team"]["id"], r["points"]) for r in table]


TABLE_AT = """
    select history.position, history.team_id, history.points
    from football.fct_football_standings_history as history
    inner join football.fct_football_snapshots as snapshots
        on history.snapshot_id = snapshots.snapshot_id
    where snapshots.endpoint = 'standings'
        and snapshots.competition_code = ?
        and history.table_type = 'TOTAL'
        and snapshots.valid_from <= ?
        and (snapshots.valid_to is null or ? < snapshots.valid_to)
    order by history.position
"""


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _tick_artifacts(flow_run_id) -> dict[str, str]:
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {a.key: a.data if isinstance(a.data, str) else json.dumps(a.data) for a in artifacts}


def test_an_unchanged_tick_lands_loads_and_builds_nothing_and_a_played_matchday_adds_one_snapshot(
    prefect_server, tmp_path, monkeypatch
):
    monkeypatch.setenv("FOOTBALL_DATA_TOKEN", SAMPLE_TOKEN)
    home = tmp_path / "home"
    warehouse = home / "warehouse.duckdb"
    with SampleServer(per_minute=1000) as server:
        server.play(1)
        kwargs = dict(
            competitions=["PL"], settings={"football_base_url": server.url, "token_block": "", "home": str(home)}
        )
        before_first = _utc_now()
        first = football(**kwargs)
        assert len(first["snapshots"]) == 2 and first["dbt"] is not None
        files = sorted((home / "lake").rglob("*Z.json"))
        warehouse_stat = warehouse.stat()

        between = _utc_now()
        state = football(**kwargs, return_state=True)
        assert state.is_completed()
        second = state.result()
        assert (second["snapshots"], second["loaded"], second["dbt"]) == ([], None, None)
        assert second["unchanged"] == ["PL standings 2024 (not_modified)", "PL scorers 2024 (not_modified)"]
        assert sorted((home / "lake").rglob("*Z.json")) == files
        assert (warehouse.stat().st_mtime_ns, warehouse.stat().st_size) == (
            warehouse_stat.st_mtime_ns,
            warehouse_stat.st_size,
        )
        artifacts = _tick_artifacts(state.state_details.flow_run_id)
        assert "Nothing changed" in artifacts["football-tick"] and "not_modified" in artifacts["football-snapshots"]
        assert "football-dbt" not in artifacts

        server.play(2)
        third = football(**kwargs)
        after_third = _utc_now()
    assert len(third["snapshots"]) == 2 and [k.split("/")[2] for k in third["snapshots"]] == ["standings", "scorers"]

    with duckdb.connect(str(warehouse)) as con:
        counts = con.execute(
            "select count(distinct snapshot_id), count(*) from football.fct_football_standings_history "
            "where competition_code = 'PL'"
        ).fetchone()
        assert counts == (2, 2 * 3 * 20)  # two distinct tables x (TOTAL, HOME, AWAY) x 20 teams, not one per tick
        assert con.execute(TABLE_AT, ["PL", before_first, before_first]).fetchall() == []
        assert con.execute(TABLE_AT, ["PL", between, between]).fetchall() == _expected_table(1)
        assert con.execute(TABLE_AT, ["PL", after_third, after_third]).fetchall() == _expected_table(2)
        confirmed = con.execute(
            "select matchday, confirmations, last_confirmed_at > valid_from from football.fct_football_snapshots "
            "where endpoint = 'standings' order by valid_from"
        ).fetchall()
        assert confirmed == [(1, 1, True), (2, 0, False)]  # the unchanged tick confirmed matchday 1 once


def test_prod_ticks_on_fakesnow_connect_to_snowflake_only_when_a_snapshot_changed(
    prefect_server, fakesnow_server, snowflake_env, tmp_path, monkeypatch
):
    import fakesnow.server as fakesnow_api
    from dbt.cli.main import dbtRunner
    from prefect_snowflake import SnowflakeConnector, SnowflakeCredentials

    from tasks.core.config import DBT_DIR
    from tasks.football.snowflake import snowflake_dbt_env

    connector = fakesnow_connector(fakesnow_server, "INSIGHTFLOW")
    block = SnowflakeConnector(
        credentials=SnowflakeCredentials(account="fakesnow", user="fake", password="snow"),
        database="INSIGHTFLOW",
        warehouse="FAKE_WH",
        schema="RAW",
    )
    block.save("football-test-snowflake", overwrite=True)
    monkeypatch.setenv("FOOTBALL_DATA_TOKEN", SAMPLE_TOKEN)
    home = tmp_path / "home"
    with SampleServer(per_minute=1000) as server:
        server.play(1)
        # fakesnow reads file:// stages only, so the prod warehouse is fed from a local lake here.
        kwargs = dict(competitions=["PL"], target="prod")
        local = {"football_base_url": server.url, "token_block": "", "lake_target": "dev", "home": str(home)}
        # full build: no incremental pass yet
        first_state = football(
            **kwargs, settings={**local, "snowflake_block": "football-test-snowflake"}, return_state=True
        )
        first = first_state.result()
        assert first["loaded"] == {"LOADED": 2}
        report = f"file://{home}/lake/reports/football/latest.md"
        events = asset_events(first_state.state_details.flow_run_id, expect=(report,))
        # the raw tables COPY INTO fills and dbt-snowflake's model relations, in Snowflake's upper case
        assert_football_chain(
            events, home, "PL", "snowflake://INSIGHTFLOW/RAW/{table}", "snowflake://INSIGHTFLOW/FOOTBALL/"
        )

        sessions = len(fakesnow_api.sessions)
        # The unchanged tick gets a connector block that does not exist: loading it at all would fail the run.
        quiet = football(**kwargs, settings={**local, "snowflake_block": "no-such-snowflake-block"}, return_state=True)
        assert quiet.is_completed() and quiet.result()["loaded"] is None and quiet.result()["dbt"] is None
        assert len(fakesnow_api.sessions) == sessions  # no Snowflake login happened

        server.play(2)
        # A changed tick that loads only (the two-tick incremental build on fakesnow is
        # tests/flows/test_football_prod.py); COPY ... FILES names exactly the two new snapshots (no LOAD_SKIPPED).
        changed = football(
            **kwargs, settings={**local, "snowflake_block": "football-test-snowflake", "run_dbt_build": False}
        )
        assert changed["loaded"] == {"LOADED": 2}
        # ...and the models are rebuilt from scratch (PATTERN copy: every file already loaded is skipped).
        rebuilt = football(
            **kwargs, settings={**local, "snowflake_block": "football-test-snowflake"}, full_refresh=True
        )
        assert rebuilt["loaded"] == {"LOAD_SKIPPED": 4}

    def fetch(sql: str) -> list[tuple]:
        rows = connector.fetch_all(sql)
        connector.reset_cursors()
        return rows

    assert fetch("select count(*) from RAW.FOOTBALL_STANDINGS") == [(2,)]  # one row per distinct snapshot
    assert fetch("select count(distinct snapshot_id), count(*) from FOOTBALL.FCT_FOOTBALL_STANDINGS_HISTORY") == [
        (2, 120)
    ]
    snapshots = fetch(
        "select matchday, valid_to is null from FOOTBALL.FCT_FOOTBALL_SNAPSHOTS "
        "where endpoint = 'standings' order by valid_from"
    )
    assert [tuple(r) for r in snapshots] == [(1, False), (2, True)]
    teams = fetch("select team_id, position from FOOTBALL.FCT_FOOTBALL_TEAM_TOP_SCORERS order by position")
    assert [tuple(t) for t in teams] == [(team, position) for position, team, _ in _expected_table(2)]
    connector.close()

    compiled = sorted((home / "dbt/football-prod/target/compiled/football").rglob("*.sql"))
    assert len([p for p in compiled if p.parent.name in ("football", "marts")]) == 8  # every model compiled
    for path in compiled:
        sqlglot.parse_one(path.read_text(), read="snowflake")

    # Compiled against the built tables, the incremental SQL filters the raw table before flattening.
    for key, value in snowflake_dbt_env(block).items():
        monkeypatch.setenv(key, value)
    project = DBT_DIR / "football"
    result = dbtRunner().invoke(
        [
            "compile",
            "--target",
            "prod",
            "--project-dir",
            str(project),
            "--profiles-dir",
            str(project),
            "--target-path",
            str(tmp_path / "incremental"),
            "--log-path",
            str(tmp_path / "logs"),
            "--select",
            "stg_football__standings",
        ]
    )
    assert result.success, result.exception
    sql = next((tmp_path / "incremental").rglob("stg_football__standings.sql")).read_text()
    assert "where loaded_at > cast('" in sql  # the filter sits on the raw table, before the flattening
    sqlglot.parse_one(sql, read="snowflake")
