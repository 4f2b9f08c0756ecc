"""The football-standings artifact on the sample: each table row and top scorer against the landed JSON, and the
points chart once the standings history holds a second matchday.
"""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import duckdb
import pytest

from tests.tasks.insightflow.report.test_publish import PNG_URI, artifacts

pytestmark = pytest.mark.integration

COMPETITIONS = ["PL", "BL1"]


def _latest(lake: Path, endpoint: str, code: str) -> dict:
    folder = lake / "raw/football" / endpoint / f"competition={code}"
    files = sorted(f for f in folder.rglob("*.json") if not f.name.startswith("_"))  # not the manifests
    return json.loads(files[-1].read_bytes())


def _section(markdown: str, code: str) -> str:
    start = re.search(rf"^## .*\({code}\)", markdown, re.M)
    assert start, f"no section for {code}"
    end = re.search(r"^## ", markdown[start.end() :], re.M)
    return markdown[start.start() : start.end() + end.start() if end else len(markdown)]


def _rows(table_markdown: str, first_header: str) -> list[list[str]]:
    rows = []
    for line in table_markdown.split(f"| {first_header} |", 1)[1].splitlines()[2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split(" | ")])
    return rows


@pytest.fixture(scope="module")
def football_run(prefect_server, tmp_path_factory):
    from flows.football import football

    home = tmp_path_factory.mktemp("football")
    summary = football(competitions=COMPETITIONS, settings={"sample": True, "home": str(home)})
    return home, summary, artifacts("football-standings")[0]["data"]


def test_standings_artifact_shows_each_table_as_the_api_sent_it(football_run):
    home, summary, markdown = football_run
    assert summary["report"].startswith("artifact football-standings (2 competitions")
    for code in COMPETITIONS:
        section = _section(markdown, code)
        body = _latest(home / "lake", "standings", code)
        table = next(t for t in body["standings"] if t["type"] == "TOTAL")["table"]
        expected = [
            [
                str(r["position"]),
                r["team"]["name"],
                str(r["playedGames"]),
                str(r["won"]),
                str(r["draw"]),
                str(r["lost"]),
                str(r["goalsFor"]),
                str(r["goalsAgainst"]),
                f"{r['goalDifference']:+d}",
                str(r["points"]),
                " ".join(r["form"].split(",")),
            ]
            for r in table
        ]
        assert _rows(section, "Pos") == expected
        assert f"matchday {body['season']['currentMatchday']}" in section


def test_top_scorers_are_the_apis_leaders_by_goals(football_run):
    home, _, markdown = football_run
    for code in COMPETITIONS:
        players = _latest(home / "lake", "scorers", code)["scorers"]
        goals = sorted((p["goals"] for p in players), reverse=True)
        cutoff = goals[min(9, len(goals) - 1)]  # ranks share ties, so the table runs to everyone level with 10th
        expected = sorted(
            (p["player"]["name"], p["team"]["name"], str(p["goals"])) for p in players if p["goals"] >= cutoff
        )
        shown = _rows(_section(markdown, code).split("### Top scorers", 1)[1], "#")
        assert sorted((r[1], r[2], r[3]) for r in shown) == expected
        assert [int(r[3]) for r in shown] == sorted((int(r[3]) for r in shown), reverse=True)


def test_a_single_matchday_gets_no_chart_and_says_why(football_run):
    _, summary, markdown = football_run
    assert not PNG_URI.search(markdown)
    assert "the history holds 1 matchday(s) of this season" in markdown
    assert summary["report"].endswith("0 points charts)")


def test_an_unchanged_tick_republishes_the_last_table_without_rebuilding(football_run):
    from flows.football import football

    home, first, markdown = football_run
    summary = football(competitions=COMPETITIONS, settings={"sample": True, "home": str(home)})
    assert summary["snapshots"] == [] and summary["loaded"] is None and summary["dbt"] is None
    republished = artifacts("football-standings")[0]["data"]
    assert republished.startswith("_Confirmed unchanged at ")
    assert republished.split("\n\n", 1)[1] == markdown
    assert summary["report"] == first["report"]


def add_earlier_matchday(warehouse: Path, matchday: int) -> dict[str, int]:
    """Insert a copy of each history snapshot as an earlier matchday with points lowered by the team's position.

    Returns the points written for PL, by team, so the test knows what the chart must show.
    """
    with duckdb.connect(str(warehouse)) as con:
        con.execute(f"""
            insert into football.fct_football_standings_history by name
            select * replace (standing_id || '-md{matchday}' as standing_id, snapshot_id || '-md{matchday}' as snapshot_id,
                              {matchday} as current_matchday, greatest(points - position, 0) as points,
                              fetched_at - interval 7 day as fetched_at)
            from football.fct_football_standings_history
        """)
        rows = con.execute(
            "select team_name, points from football.fct_football_standings_history "
            f"where competition_code = 'PL' and table_type = 'TOTAL' and current_matchday = {matchday}"
        ).fetchall()
    return dict(rows)


def test_points_chart_appears_with_a_second_matchday(football_run, tmp_path):
    from PIL import Image

    from tasks.football.report import duckdb_query, points_by_matchday, read_marts, render_markdown

    home, _, _ = football_run
    warehouse = tmp_path / "warehouse.duckdb"
    warehouse.write_bytes((home / "warehouse.duckdb").read_bytes())
    earlier = add_earlier_matchday(warehouse, 9)
    body = _latest(home / "lake", "standings", "PL")
    table = next(t for t in body["standings"] if t["type"] == "TOTAL")["table"]
    latest = body["season"]["currentMatchday"]

    marts = read_marts(duckdb_query(str(warehouse)), "football")
    assert points_by_matchday(marts["history"], "PL", 2024) == {
        r["team"]["name"]: {9: earlier[r["team"]["name"]], latest: r["points"]} for r in table
    }
    markdown, charts = render_markdown(marts)
    assert charts == 2
    images = [base64.b64decode(m) for m in PNG_URI.findall(markdown)]
    assert len(images) == 2
    for png in images:
        assert len(png) <= 150_000
        with Image.open(io.BytesIO(png)) as image:
            assert image.format == "PNG" and image.width >= 800
