"""The football report: each competition's current table and top scorers as the markdown artifact ``football-standings``.

The last step of the football flow, after dbt. It reads the marts in the warehouse the run built:
the DuckDB file locally (under the home lock) or Snowflake through the ``SnowflakeConnector`` block
in prod. When the standings history holds at least two matchdays of a season, a points-by-matchday
chart (matplotlib, Agg, offline; see tasks/insightflow/report/charts.py for why) is embedded as a PNG data URI.

The markdown is also kept in the lake (``reports/football/latest.md``). A tick on which nothing
changed runs no dbt and opens no warehouse (tasks/football/snapshots.py), so it republishes that copy,
marked as confirmed unchanged: every run still has its ``football-standings`` artifact.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from blocks import names
from tasks.core import config
from tasks.core.assets import location_key, materialized
from tasks.core.charts import figure_png, png_data_uri
from tasks.core.lake import Lake
from tasks.core.locks import home_lock
from tasks.core.orchestration import publish
from tasks.core.query import Query, duckdb_query

ARTIFACT_KEY = "football-standings"
LATEST_KEY = "reports/football/latest.md"
TOP_SCORERS = 10
STANDINGS_SQL = """
select competition_code, competition_name, season_year, current_matchday, stage, group_name, position, team_name,
       played_games, won, draw, lost, goals_for, goals_against, goal_difference, points, form, fetched_at
from {schema}.fct_football_standings_current
order by competition_code, season_year, stage, group_name, position
"""
SCORERS_SQL = """
select competition_code, season_year, scorer_rank, player_name, team_name, goals, assists, penalties, played_matches
from {schema}.fct_football_top_scorers_current
where scorer_rank <= {limit}
order by competition_code, season_year, scorer_rank, player_name
"""
HISTORY_SQL = """
select competition_code, season_year, current_matchday, team_name, points, fetched_at
from {schema}.fct_football_standings_history
where table_type = 'TOTAL'
"""
COLUMNS = ("Pos", "Team", "P", "W", "D", "L", "GF", "GA", "GD", "Pts", "Form")


@dataclass(frozen=True)
class FootballReport:
    competitions: int
    charts: int
    markdown_bytes: int
    seconds: float


def snowflake_query(block_name: str) -> tuple[Query, Callable[[], None]]:
    """Run SQL through the Snowflake connector block; returns (query, close)."""
    from snowflake.connector import DictCursor

    from tasks.football.snowflake import open_connector

    connector = open_connector(block_name)

    def query(sql: str) -> list[dict[str, Any]]:
        with connector.get_connection().cursor(DictCursor) as cursor:
            cursor.execute(sql)
            return [{k.lower(): v for k, v in row.items()} for row in cursor.fetchall()]

    return query, connector.close


def read_marts(query: Query, schema: str) -> dict[str, list[dict[str, Any]]]:
    return {
        "standings": query(STANDINGS_SQL.format(schema=schema)),
        "scorers": query(SCORERS_SQL.format(schema=schema, limit=TOP_SCORERS)),
        "history": query(HISTORY_SQL.format(schema=schema)),
    }


def points_by_matchday(history: list[dict[str, Any]], code: str, season: int) -> dict[str, dict[int, int]]:
    """team -> {matchday: points} from the last snapshot of each matchday of one competition's season."""
    last: dict[int, Any] = {}
    rows = [
        r
        for r in history
        if r["competition_code"] == code and r["season_year"] == season and r["current_matchday"] is not None
    ]
    for row in rows:
        day = int(row["current_matchday"])
        last[day] = max(last.get(day, row["fetched_at"]), row["fetched_at"])
    table: dict[str, dict[int, int]] = {}
    for row in rows:
        day = int(row["current_matchday"])
        if row["fetched_at"] == last[day]:
            table.setdefault(row["team_name"], {})[day] = int(row["points"])
    return table


def points_chart(points: dict[str, dict[int, int]], title: str) -> bytes:
    """Points by matchday, one line per team, as a palette PNG."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(9, 5), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    fig.suptitle(title, x=0.01, ha="left", fontsize=13, fontweight="bold")
    ranked = sorted(points.items(), key=lambda item: -item[1][max(item[1])])
    for team, by_day in ranked:
        days = sorted(by_day)
        ax.plot(days, [by_day[d] for d in days], marker="o", markersize=3, linewidth=1.6, label=team)
    ax.set_xlabel("Matchday (last standings snapshot of each)")
    ax.set_ylabel("Points (3 a win, 1 a draw)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(color="#E5E5E5")
    # Outside the axes: inside, the leaders' lines run straight through the top-left corner.
    ax.legend(
        loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8.5, frameon=False, ncols=2 if len(points) > 12 else 1
    )
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.supxlabel(
        "Source: football-data.org standings; mart fct_football_standings_history",
        x=0.01,
        ha="left",
        fontsize=8,
        color="#555555",
    )
    return figure_png(fig, f"football points chart {title!r}")


def _cell(value: Any) -> str:
    return "" if value is None else str(value).replace("|", "\\|")


def _when(value: Any) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC" if hasattr(value, "strftime") else str(value)


def _form(value: Any) -> str:
    return " ".join(str(value).split(",")) if value else ""


def _table(columns: Sequence[str], text_columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A markdown table; columns not in ``text_columns`` are numbers, right-aligned."""
    lines = [
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---" if c in text_columns else "---:" for c in columns) + "|",
    ]
    lines += ["| " + " | ".join(_cell(c) for c in cells) + " |" for cells in rows]
    return "\n".join(lines)


def standings_table(rows: list[dict[str, Any]]) -> str:
    cells = (
        (
            r["position"],
            r["team_name"],
            r["played_games"],
            r["won"],
            r["draw"],
            r["lost"],
            r["goals_for"],
            r["goals_against"],
            f"{r['goal_difference']:+d}",
            r["points"],
            _form(r["form"]),
        )
        for r in rows
    )
    return _table(COLUMNS, ("Team", "Form"), cells)


def scorers_table(rows: list[dict[str, Any]]) -> str:
    columns = ("#", "Player", "Team", "Goals", "Assists", "Penalties", "Played")
    keys = ("scorer_rank", "player_name", "team_name", "goals", "assists", "penalties", "played_matches")
    return _table(columns, ("Player", "Team"), ([r[k] for k in keys] for r in rows))


def render_markdown(marts: dict[str, list[dict[str, Any]]]) -> tuple[str, int]:
    """The artifact's markdown and how many charts it embeds."""
    parts, charts = ["# Football: current standings and top scorers"], 0
    competitions = sorted({(r["competition_code"], r["season_year"]) for r in marts["standings"]})
    if not competitions:
        parts.append("No standings in the warehouse yet.")
    for code, season in competitions:
        rows = [r for r in marts["standings"] if (r["competition_code"], r["season_year"]) == (code, season)]
        first = rows[0]
        parts.append(
            f"## {first['competition_name']} ({code}), {season}/{str(season + 1)[-2:]}, "
            f"matchday {first['current_matchday']}"
        )
        parts.append(f"_Standings fetched {_when(first['fetched_at'])}._")
        tables = sorted({(r["stage"] or "", r["group_name"] or "") for r in rows})
        for stage, group in tables:
            if len(tables) > 1:
                parts.append(f"### {group or stage}")
            parts.append(
                standings_table([r for r in rows if (r["stage"] or "", r["group_name"] or "") == (stage, group)])
            )
        scorers = [r for r in marts["scorers"] if (r["competition_code"], r["season_year"]) == (code, season)]
        parts.append(f"### Top scorers\n\n{scorers_table(scorers)}" if scorers else "_No scorers published yet._")
        points = points_by_matchday(marts["history"], code, season)
        days = {d for by_day in points.values() for d in by_day}
        if len(days) >= 2 and len(tables) == 1:
            png = points_chart(
                points, f"{first['competition_name']} {season}/{str(season + 1)[-2:]}: points by matchday"
            )
            parts.append(f"![Points by matchday, {first['competition_name']}]({png_data_uri(png)})")
            charts += 1
        else:
            parts.append(
                f"_Points chart: the history holds {len(days)} matchday(s) of this season; "
                "it appears from the second matchday on._"
            )
    return "\n\n".join(parts) + "\n", charts


@task(name="football-report", cache_policy=NO_CACHE)
def publish_football_report(
    lake: Lake, target: str, home: str | None, snowflake_block: str = names.SNOWFLAKE, upstream: list[str] = ()
) -> FootballReport:
    """Publish each competition's current table, top scorers and points chart as the ``football-standings`` artifact.

    Materializes the asset ``<lake>/reports/football/latest.md`` from ``upstream``, the marts it reads.
    """
    with materialized(
        location_key(lake.uri(LATEST_KEY)), upstream, name="football standings", layer="report", by="football"
    ) as asset:
        result = _publish(lake, target, home, snowflake_block)
        asset.add({"competitions": result.competitions, "charts": result.charts})
    return result


def _publish_artifact(markdown: str) -> None:
    publish(
        "the football report artifact",
        create_markdown_artifact,
        markdown,
        key=ARTIFACT_KEY,
        description="Current standings and top scorers per competition",
    )


def _publish(lake: Lake, target: str, home: str | None, snowflake_block: str) -> FootballReport:
    started = time.perf_counter()
    source = "DuckDB" if target == "dev" else f"Snowflake (block {snowflake_block})"
    try:
        if target == "dev":
            with home_lock(config.insightflow_home(home), what="football report"):
                marts = read_marts(duckdb_query(str(config.warehouse_path(home))), "football")
        else:
            query, close = snowflake_query(snowflake_block)
            try:
                marts = read_marts(query, os.environ.get("FOOTBALL_DBT_SCHEMA", "FOOTBALL"))
            finally:
                close()
    except Exception as exc:
        raise RuntimeError(f"football report: reading the football marts from {source} failed: {exc}") from exc
    markdown, charts = render_markdown(marts)
    _publish_artifact(markdown)
    lake.write(LATEST_KEY, markdown.encode())
    result = FootballReport(
        competitions=len({r["competition_code"] for r in marts["standings"]}),
        charts=charts,
        markdown_bytes=len(markdown.encode()),
        seconds=round(time.perf_counter() - started, 3),
    )
    get_run_logger().info(
        "football report: %d competition(s), %d chart(s), %d bytes of markdown in %.2fs",
        result.competitions,
        result.charts,
        result.markdown_bytes,
        result.seconds,
    )
    return result


@task(name="republish-football-report", cache_policy=NO_CACHE)
def republish_football_report(lake: Lake) -> FootballReport | None:
    """Publish the last report again, marked unchanged; None when no report was ever published."""
    started = time.perf_counter()
    latest = lake.read(LATEST_KEY)
    if latest is None:
        get_run_logger().info("football report: nothing rebuilt and no earlier report in the lake to republish")
        return None
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    markdown = f"_Confirmed unchanged at {stamp}: no new standings or scorers since this table was built._\n\n"
    markdown += latest.decode()
    _publish_artifact(markdown)
    charts = markdown.count("](data:image/png;base64,")
    competitions = markdown.count("\n## ")
    return FootballReport(
        competitions=competitions,
        charts=charts,
        markdown_bytes=len(markdown.encode()),
        seconds=round(time.perf_counter() - started, 3),
    )
