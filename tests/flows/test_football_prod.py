"""The football prod path on fakesnow, two ticks with dbt each time, the second incremental: after each
tick every model dbt built in Snowflake equals the same model built from scratch by the dev target
(DuckDB) from the same lake files, row for row.

Snowflake is fakesnow in server mode (taught COPY INTO and schema-qualified temporary objects in
tests/support/football.py); the lake is a local directory, since fakesnow reads ``file://`` stages only.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from flows.football import football
from tasks.core.dbt.runner import run_dbt
from tasks.core.lake import LocalLake
from tasks.football.api import ENDPOINTS
from tasks.football.load import load_duckdb
from tasks.football.sample.data import SAMPLE_TOKEN
from tasks.football.sample.server import SampleServer
from tasks.football.snapshots import read_ledger, read_manifest, snapshot_rows
from tests.support.football import fakesnow_connector

pytestmark = pytest.mark.integration

COMPETITIONS = ["PL", "BL1"]
DATABASE = "FOOTBALL_TICKS"  # its own fakesnow database: the server is shared by the session's tests
BLOCK = "football-ticks-snowflake"
# When the warehouse loaded a row: each warehouse's own clock, so never equal across the two.
LOAD_TIME_COLUMNS = {"loaded_at"}


def _models(manifest_path: Path) -> dict[str, dict[str, Any]]:
    manifest = json.loads(manifest_path.read_text())
    return {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}


def _value(value: Any) -> Any:
    """One cell, in a form both warehouses' drivers agree on (NUMBER comes back as Decimal from Snowflake)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, float):
        return None if math.isnan(value) else float(f"{value:.12g}")
    if isinstance(value, datetime):
        assert value.tzinfo is None, value  # both sides store naive UTC (TIMESTAMP_NTZ / TIMESTAMP)
        return value
    assert value is None or isinstance(value, (bool, int, str, date)), (type(value), value)
    return value


def _table(cursor: Any, sql: str) -> tuple[list[str], list[tuple]]:
    """(lower-case column names sorted, rows as sorted tuples over those columns), load times left out."""
    cursor.execute(sql)
    names = [d[0].lower() for d in cursor.description]
    keep = sorted(n for n in names if n not in LOAD_TIME_COLUMNS)
    rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    return keep, sorted((tuple(_value(r[n]) for n in keep) for r in rows), key=repr)


def _dev_reference(lake: LocalLake, work: Path) -> Path:
    """Every model built from scratch on DuckDB in ``work`` from the lake as it is now: every file, every ledger."""
    warehouse = work / "warehouse.duckdb"
    ledger_rows = []
    for code in COMPETITIONS:
        for endpoint in ENDPOINTS:
            seasons = read_manifest(lake, code, endpoint)["seasons"]
            for season, state in seasons.items():
                ledger = read_ledger(lake, code, endpoint, season)
                ledger_rows += snapshot_rows(ledger, state.get("latest"), code, endpoint, season)
    assert ledger_rows
    load_duckdb(lake, warehouse, None, ledger_rows)
    run_dbt("football", "dev", {"INSIGHTFLOW_WAREHOUSE_PATH": str(warehouse)}, work_dir=work / "dbt", in_prefect=False)
    return work


def _assert_models_equal(prod_target: Path, dev: Path, snowflake: Any) -> dict[str, int]:
    """Each model of the prod build read from fakesnow equals the dev build's; returns rows per model."""
    prod_models, dev_models = _models(prod_target / "manifest.json"), _models(dev / "dbt/target/manifest.json")
    assert sorted(prod_models) == sorted(dev_models) and len(prod_models) == 8
    sizes = {}
    cursor = snowflake.cursor()
    with duckdb.connect(str(dev / "warehouse.duckdb")) as con:
        for name, node in sorted(prod_models.items()):
            dev_node = dev_models[name]
            prod_columns, prod_rows = _table(
                cursor, f"select * from {node['database']}.{node['schema']}.{node['alias']}"
            )
            dev_columns, dev_rows = _table(con, f"select * from {dev_node['schema']}.{dev_node['alias']}")
            assert prod_columns == dev_columns, name
            assert len(prod_rows) == len(dev_rows), name
            for prod_row, dev_row in zip(prod_rows, dev_rows, strict=True):
                assert prod_row == dev_row, (name, dict(zip(prod_columns, prod_row, strict=True)), dev_row)
            sizes[name] = len(prod_rows)
    cursor.close()
    return sizes


def _landed_rows(lake_dir: Path, keys: list[str]) -> dict[str, int]:
    """Rows the newly landed snapshot files hold, counted from the JSON: all standings rows, TOTAL ones, scorers."""
    counts = {"standings": 0, "total": 0, "scorers": 0}
    for key in keys:
        document = json.loads((lake_dir / key).read_bytes())
        if "/standings/" in key:
            counts["standings"] += sum(len(t["table"]) for t in document["standings"])
            counts["total"] += sum(len(t["table"]) for t in document["standings"] if t["type"] == "TOTAL")
        else:
            counts["scorers"] += len(document["scorers"])
    return counts


def _main_statements(prod_target: Path, models: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The SQL dbt last executed as each incremental model's main statement (target/run/...)."""
    statements = {}
    for name, node in models.items():
        if node["config"]["materialized"] == "incremental":
            path = prod_target / "run" / "football" / node["original_file_path"]
            statement = " ".join(path.read_text().lower().split())
            statements[name] = statement.removeprefix("begin;").strip()  # dbt wraps delete+insert in a transaction
    return statements


def test_two_prod_ticks_on_fakesnow_build_then_update_incrementally_and_equal_the_dev_marts(
    prefect_server, fakesnow_server, snowflake_env, tmp_path, monkeypatch
):
    import snowflake.connector
    from prefect_snowflake import SnowflakeConnector, SnowflakeCredentials

    fakesnow_connector(fakesnow_server, DATABASE).close()
    SnowflakeConnector(
        credentials=SnowflakeCredentials(account="fakesnow", user="fake", password="snow"),
        database=DATABASE,
        warehouse="FAKE_WH",
        schema="RAW",
    ).save(BLOCK, overwrite=True)
    monkeypatch.setenv("FOOTBALL_DATA_TOKEN", SAMPLE_TOKEN)
    home = tmp_path / "home"
    lake = LocalLake(home / "lake")
    prod_target = home / "dbt" / "football-prod" / "target"
    reader = snowflake.connector.connect(**fakesnow_server, database=DATABASE)  # independent of the flow's sessions

    with SampleServer(per_minute=1000) as server:
        settings = {
            "football_base_url": server.url,
            "token_block": "",
            "lake_target": "dev",
            "home": str(home),
            "snowflake_block": BLOCK,
        }
        kwargs = dict(competitions=COMPETITIONS, target="prod", settings=settings)
        server.play(1)
        first = football(**kwargs)
        assert first["loaded"] == {"LOADED": 4} and first["dbt"] is not None
        models = _models(prod_target / "manifest.json")
        incremental = sorted(n for n, node in models.items() if node["config"]["materialized"] == "incremental")
        assert len(incremental) == 5
        # the first tick creates every incremental model from its full query
        assert all(s.startswith("create or replace") for s in _main_statements(prod_target, models).values())
        sizes_first = _assert_models_equal(prod_target, _dev_reference(lake, tmp_path / "dev1"), reader)

        server.play(2)
        second = football(**kwargs)
    assert second["loaded"] == {"LOADED": 4} and second["dbt"] is not None
    assert sorted(k.split("/")[2] for k in second["snapshots"]) == ["scorers", "scorers", "standings", "standings"]

    # The second tick ran each incremental model incrementally: dbt executed an insert from the model's
    # __dbt_tmp relation (after a delete for delete+insert) and inserted only the new snapshots' rows.
    results = {
        r["unique_id"].split(".")[-1]: r
        for r in json.loads((prod_target / "run_results.json").read_text())["results"]
        if r["unique_id"].startswith("model.")
    }
    assert {results[n]["status"] for n in incremental} == {"success"}
    statements = _main_statements(prod_target, models)
    for name in incremental:
        assert not statements[name].startswith("create"), (name, statements[name][:200])
        assert f"insert into {DATABASE.lower()}." in statements[name] and "__dbt_tmp" in statements[name], name
    for name in ("fct_football_standings_current", "fct_football_top_scorers_current"):
        assert statements[name].startswith("delete from"), name
    new = _landed_rows(home / "lake", second["snapshots"])
    inserted = {name: results[name]["adapter_response"].get("rows_affected") for name in incremental}
    assert inserted == {
        "stg_football__standings": new["standings"],
        "fct_football_standings_history": new["standings"],
        "fct_football_standings_current": new["total"],
        "stg_football__scorers": new["scorers"],
        "fct_football_top_scorers_current": new["scorers"],
    }
    sizes_second = _assert_models_equal(prod_target, _dev_reference(lake, tmp_path / "dev2"), reader)
    # the history kept the first tick's rows and gained the second's
    assert (
        sizes_second["fct_football_standings_history"]
        == sizes_first["fct_football_standings_history"] + new["standings"]
    )
    assert sizes_second["fct_football_standings_current"] == sizes_first["fct_football_standings_current"]

    # dbt dropped every temporary relation it made (fakesnow keeps them as ordinary objects: tests/support/football.py)
    cursor = reader.cursor()
    cursor.execute("select table_schema, table_name from information_schema.tables where table_name ilike '%__dbt_tmp'")
    assert cursor.fetchall() == []
    reader.close()
