"""Loopback stand-ins for the football pipeline: the football-data.org sample server, fakesnow, moto.

fakesnow 0.12.1 runs COPY INTO from a ``file://`` stage with load history, but not the form the
prod load uses. ``_teach_fakesnow_copy`` adds, in this process only (the server runs in a thread
here): ``PATTERN=`` (regex over the file URL, as Snowflake applies it to the path), recursive stage
listing (Snowflake lists every file under the stage path; fakesnow only the top folder), and copy
transformations selecting ``metadata$filename`` (the path relative to the stage URL) and ``$1``
(the whole JSON document). Everything else (file formats, stages, load history, VARIANT) is fakesnow's.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tasks.football.sample.server import SampleServer

_copy_state = threading.local()


def _teach_fakesnow_copy() -> None:
    import fakesnow.copy_into as copy_into_module
    import fakesnow.cursor as cursor_module
    from sqlglot import exp

    if getattr(copy_into_module, "_insightflow_patched", False):
        return
    original_copy = copy_into_module.copy_into
    original_glob = copy_into_module._source_glob
    original_inserts = copy_into_module._inserts
    original_stage_url = copy_into_module.stage_url_from_var

    def stage_url_from_var(var, duck_conn, database, schema, table_stages, target):
        root = original_stage_url(var.partition("/")[0], duck_conn, database, schema, table_stages, target)
        _copy_state.stage_root = root.rstrip("/") + "/"
        return original_stage_url(var, duck_conn, database, schema, table_stages, target)

    def source_glob(source, duck_conn):
        if not source.startswith("file://"):
            return original_glob(source, duck_conn)
        rows = duck_conn.execute(f"select file from glob('{source.rstrip('/')}/**/*')").fetchall()
        urls = sorted(r[0] if r[0].startswith("file:") else "file://" + r[0] for r in rows)
        pattern = getattr(_copy_state, "pattern", None)
        return [u for u in urls if pattern is None or re.fullmatch(pattern, u)]

    def inserts(expr, params, urls, parquet_info=None):
        statements = original_inserts(expr, params, urls, parquet_info)
        root = getattr(_copy_state, "stage_root", "")
        for statement, url in zip(statements, urls, strict=False):
            relative = url[len(root) :] if root and url.startswith(root) else url
            for column in list(statement.find_all(exp.Column)):
                if column.name.lower() == "metadata$filename":
                    column.replace(exp.Literal.string(relative))
        return statements

    def copy_into(duck_conn, database, schema, expr, table_stages, params=None):
        kept, _copy_state.pattern = [], None
        for param in expr.args.get("params") or []:
            if param.this.name.upper() == "PATTERN":
                _copy_state.pattern = param.expression.name
            else:
                kept.append(param)
        expr.set("params", kept)
        source = expr.args["files"][0]
        if isinstance(source, exp.Subquery):
            for dollar in list(source.this.find_all(exp.Parameter)):
                if dollar.name == "1":
                    dollar.replace(exp.column("json"))  # fakesnow reads JSON files with read_json_objects -> json
        return original_copy(duck_conn, database, schema, expr, table_stages, params)

    copy_into_module.stage_url_from_var = stage_url_from_var
    copy_into_module._source_glob = source_glob
    copy_into_module._inserts = inserts
    cursor_module.copy_into = copy_into
    copy_into_module._insightflow_patched = True


@pytest.fixture
def sample_server() -> Iterator[SampleServer]:
    """The v4 sample server with a 10-request budget per 3-second "minute" (fast rate-limit tests)."""
    with SampleServer(per_minute=10, window_s=3.0) as server:
        yield server


@pytest.fixture(scope="session")
def fakesnow_server() -> Iterator[dict]:
    """fakesnow in server mode on loopback (with the COPY extensions above); yields connection kwargs."""
    import fakesnow

    _teach_fakesnow_copy()
    with fakesnow.server() as kwargs:
        yield kwargs


@pytest.fixture
def snowflake_env(fakesnow_server, monkeypatch) -> dict[str, str]:
    """Point connector overrides and dbt's prod profile at fakesnow; returns the variables set."""
    env = {
        "SNOWFLAKE_HOST": fakesnow_server["host"],
        "SNOWFLAKE_PORT": str(fakesnow_server["port"]),
        "SNOWFLAKE_PROTOCOL": "http",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def fakesnow_connector(fakesnow_server: dict, database: str):
    """An unsaved SnowflakeConnector connected to fakesnow, with ``database`` created."""
    from prefect_snowflake import SnowflakeConnector, SnowflakeCredentials

    credentials = SnowflakeCredentials(account="fakesnow", user="fake", password="snow")
    connector = SnowflakeConnector(credentials=credentials, database=database, warehouse="FAKE_WH", schema="RAW")
    connector.get_connection(
        host=fakesnow_server["host"],
        port=fakesnow_server["port"],
        protocol="http",
        session_parameters=fakesnow_server["session_parameters"],
    )
    connector.execute(f"create database if not exists {database}")
    return connector


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto S3 server on loopback for the S3 lake path."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def lake_files(root: Path, prefix: str) -> list[Path]:
    return sorted(p for p in (root / prefix).rglob("*") if p.is_file())


def sample_tick(lake, server: SampleServer, session, codes=("PL",)) -> list:
    """One tick of the flow's check loop (manifest, conditional fetch, record), with the plain functions its tasks call."""
    from tasks.football.api import ENDPOINTS, endpoint_url, fetch
    from tasks.football.snapshots import read_manifest, record, validators_for

    outcomes = []
    for code in codes:
        for endpoint in ENDPOINTS:
            manifest = read_manifest(lake, code, endpoint)
            validators = validators_for(manifest, endpoint_url(server.url, code, endpoint, None))
            fetched = fetch(
                session.client,
                session.root,
                session.token,
                code,
                endpoint,
                None,
                session.pacer,
                session.policy,
                validators,
            )
            outcomes.append(record(lake, fetched, manifest))
    return outcomes
