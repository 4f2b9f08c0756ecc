"""Fixtures for the hardening tests: canary secrets in the environment, one cold flow run to share.

The canaries are set before any flow runs, so every run in this folder (in-process or subprocess)
carries them and test_secrets can grep the whole Prefect server, every artifact and the lakes.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

CANARIES = {
    "FOOTBALL_DATA_TOKEN": "canary-football-9d41e7c2b5",
    "AWS_ACCESS_KEY_ID": "AKIACANARY7Q4X2M8N1P",
    "AWS_SECRET_ACCESS_KEY": "canary-aws-secret-3f8a61d0c94e2b7f",
}


def lake_snapshot(lake: Path) -> dict[str, tuple[int, int]]:
    """relative path → (mtime_ns, size) for every file under the lake."""
    return {
        p.relative_to(lake).as_posix(): (p.stat().st_mtime_ns, p.stat().st_size)
        for p in sorted(lake.rglob("*"))
        if p.is_file()
    }


def history_free_key(key: str) -> str:
    """A lake key with a history version's seen-at stamp dropped (``…/<stamp>-<sha16>.parquet`` → ``…/<sha16>``).

    Two homes landing the same data record the same versions at different times: same partitions, same
    content hashes, different stamps (and version_seen_at values) in their history.
    """
    if not key.startswith("history/"):
        return key
    folder, name = key.rsplit("/", 1)
    return f"{folder}/{name.rsplit('-', 1)[-1].removesuffix('.parquet')}"


def warehouse_checksums(path: Path) -> dict[str, tuple[int, str]]:
    """table → (rows, md5 of its sorted rows) for every table (the marts) in the DuckDB file.

    Timestamp columns are left out: they record when a run saw a version (fct_retail_sales_vintages'
    seen_at …), which differs between two homes that landed the same data.
    """
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = [
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables "
                "where table_schema = 'main' and table_type = 'BASE TABLE' order by 1"
            ).fetchall()
        ]
        out = {}
        for name in tables:
            columns = [
                r[0]
                for r in con.execute(
                    "select column_name from information_schema.columns where table_name = ? "
                    "and data_type not like 'TIMESTAMP%' order by ordinal_position",
                    [name],
                ).fetchall()
            ]
            row = "row(" + ", ".join(f'"{c}"' for c in columns) + ")"
            rows, digest = con.execute(
                f"select count(*), md5(coalesce(string_agg(cast({row} as varchar), '|' "
                f"order by cast({row} as varchar)), '')) from \"{name}\""
            ).fetchall()[0]
            out[name] = (rows, digest)
        return out
    finally:
        con.close()


def flush_api_logs() -> None:
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()  # an instance method; it drains the process-wide log worker
    time.sleep(1.0)


@pytest.fixture(scope="session")
def canary_env():
    saved = {k: os.environ.get(k) for k in CANARIES}
    os.environ.update(CANARIES)
    yield CANARIES
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def cold_home(prefect_server, canary_env, tmp_path_factory):
    """A home after one cold ``insightflow(settings={"sample": True})`` run: its snapshot and warehouse numbers."""
    from flows.insightflow import insightflow

    home = tmp_path_factory.mktemp("cold-home")
    state = insightflow(settings={"sample": True, "home": str(home)}, return_state=True)
    assert state.is_completed(), state.message
    return {
        "home": home,
        "flow_run_id": state.state_details.flow_run_id,
        "summary": state.result(),
        "lake": lake_snapshot(home / "lake"),
        "warehouse": warehouse_checksums(home / "warehouse.duckdb"),
    }
