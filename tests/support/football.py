"""Loopback stand-ins for the football pipeline: the football-data.org sample server, fakesnow, moto.

fakesnow 0.12.1 runs COPY INTO from a ``file://`` stage with load history, but not the form the
prod load uses. ``_teach_fakesnow_copy`` adds, in this process only (the server runs in a thread
here): ``PATTERN=`` (regex over the file URL, as Snowflake applies it to the path), recursive stage
listing (Snowflake lists every file under the stage path; fakesnow only the top folder), and copy
transformations selecting ``metadata$filename`` (the path relative to the stage URL) and ``$1``
(the whole JSON document). Everything else (file formats, stages, load history, VARIANT) is fakesnow's.

It also refuses the second run of every dbt-snowflake incremental model (``_teach_fakesnow_temporary``
below says why and what it changes), and its server hands a NULL ``TIMESTAMP_*`` to the client as
1970-01-01 (``_teach_fakesnow_null_timestamps``).
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


def qualified_temporary_as_schema_object(expression):
    """``CREATE [OR REPLACE] TEMPORARY TABLE|VIEW db.schema.name`` -> the same without ``TEMPORARY``.

    A sqlglot transform for fakesnow's cursor (the form fakesnow's own transforms take). Snowflake
    keeps a temporary table or view in the schema its name says, visible to that session only.
    fakesnow maps Snowflake's database.schema to a DuckDB catalog.schema, and DuckDB keeps temporary
    objects only in its ``temp`` catalog, so a schema-qualified temporary object fails with "TEMPORARY
    table names can *only* use the "temp" catalog". dbt-snowflake's incremental materialization
    creates exactly that on every run after the first (``<db>.<schema>.<model>__dbt_tmp``: a temporary
    view for append/merge, a temporary table for delete+insert with a unique key), then DESCRIBEs it,
    inserts or merges from it under the same qualified name and drops it. Created as an ordinary
    table or view in the named schema, every one of those statements resolves through fakesnow's
    normal paths (information_schema, DESCRIBE, INSERT ... SELECT, DROP). What is lost is the
    session scope: the object outlives the session unless dropped, and another session can see it.
    dbt drops it at the end of the model (``drop_relation_if_exists(tmp_relation)``), and its name is
    per model. Unqualified temporary objects keep fakesnow's own handling (DuckDB's ``temp`` catalog).
    """
    from sqlglot import exp

    if not isinstance(expression, exp.Create) or (expression.kind or "").upper() not in ("TABLE", "VIEW"):
        return expression
    properties = expression.args.get("properties")
    temporary = [p for p in (properties.expressions if properties else []) if isinstance(p, exp.TemporaryProperty)]
    target = expression.this.this if isinstance(expression.this, exp.Schema) else expression.this
    if not temporary or not isinstance(target, exp.Table) or not target.db:
        return expression
    for prop in temporary:
        prop.pop()
    if not properties.expressions:
        properties.pop()
    return expression


def _teach_fakesnow_temporary() -> None:
    """Run ``qualified_temporary_as_schema_object`` before fakesnow's own transforms, in this process."""
    import fakesnow.cursor as cursor_module

    cursor = cursor_module.FakeSnowflakeCursor
    if getattr(cursor, "_insightflow_temporary", False):
        return
    original_transform = cursor._transform

    def _transform(self, expression, params):
        return original_transform(self, expression.transform(qualified_temporary_as_schema_object, copy=False), params)

    cursor._transform = _transform
    cursor._insightflow_temporary = True


def _teach_fakesnow_null_timestamps() -> None:
    """Send a NULL timestamp to the client as NULL, not as the epoch (fakesnow 0.12.1 server mode).

    The server returns results as Arrow in Snowflake's layout, where a timestamp is a struct of
    (epoch, fraction[, timezone]). ``fakesnow.arrow.timestamp_to_sf_struct`` builds that struct from
    the child arrays without a validity mask, so every NULL arrives as a valid 1970-01-01 00:00:00
    (``select valid_to`` of a current snapshot; ``valid_to is null`` in SQL still says true). This
    wrapper marks the struct null where the timestamp is null (children zero-filled, since their
    fields are declared non-nullable); the connector then returns None, as it does from Snowflake.
    """
    import fakesnow.arrow as arrow_module
    import pyarrow as pa
    import pyarrow.compute as pc

    if getattr(arrow_module, "_insightflow_null_timestamps", False):
        return
    original = arrow_module.timestamp_to_sf_struct

    def timestamp_to_sf_struct(ts):
        if isinstance(ts, pa.ChunkedArray):
            ts = ts.combine_chunks()
        struct = original(ts)
        if ts.null_count == 0:
            return struct
        children = [pc.fill_null(struct.field(i), 0) for i in range(struct.type.num_fields)]
        return pa.StructArray.from_arrays(children, fields=list(struct.type), mask=ts.is_null())

    arrow_module.timestamp_to_sf_struct = timestamp_to_sf_struct  # to_sf looks it up at call time
    arrow_module._insightflow_null_timestamps = True


@pytest.fixture
def sample_server() -> Iterator[SampleServer]:
    """The v4 sample server with a 10-request budget per 3-second "minute" (fast rate-limit tests)."""
    with SampleServer(per_minute=10, window_s=3.0) as server:
        yield server


@pytest.fixture(scope="session")
def fakesnow_server() -> Iterator[dict]:
    """fakesnow in server mode on loopback (with the teaching above); yields connection kwargs."""
    import fakesnow

    _teach_fakesnow_copy()
    _teach_fakesnow_temporary()
    _teach_fakesnow_null_timestamps()
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
