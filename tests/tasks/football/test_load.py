"""Raw loads: DuckDB exactly once across re-runs; Snowflake DDL + stage + COPY INTO on fakesnow; S3 lake on moto."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
import sqlglot

from tasks.core.lake import LocalLake
from tasks.football.api import Fetched
from tasks.football.land import land
from tasks.football.load import load_duckdb
from tasks.football.sample.data import scorers, standings
from tasks.football.snowflake import SnowflakeLayout, copy_files_sql, copy_sql, load_snowflake, snowflake_ddl, stage_url
from tests.support.football import fakesnow_connector

pytestmark = pytest.mark.integration

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def _land_sample(lake, codes=("PL", "BL1"), at: datetime = START) -> list[str]:
    keys = []
    for i, code in enumerate(codes):
        for endpoint, body in (("standings", standings(code)), ("scorers", scorers(code, limit=100))):
            fetched = Fetched(
                code,
                endpoint,
                None,
                "http://sample",
                json.dumps(body).encode(),
                "application/json",
                at + timedelta(seconds=i),
            )
            keys.append(land(lake, fetched))
    return keys


def test_duckdb_load_takes_each_lake_file_exactly_once_across_reruns(tmp_path):
    lake, warehouse = LocalLake(tmp_path / "lake"), tmp_path / "warehouse.duckdb"
    _land_sample(lake)
    assert load_duckdb(lake, warehouse) == {"standings": 2, "scorers": 2}
    assert load_duckdb(lake, warehouse) == {"standings": 0, "scorers": 0}
    _land_sample(lake, codes=("PL",), at=START + timedelta(hours=1))
    assert load_duckdb(lake, warehouse) == {"standings": 1, "scorers": 1}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "select competition_code, season_year, fetched_at, document->>'$.competition.code' "
            "from raw.football_standings order by fetched_at"
        ).fetchall()
    assert rows[0] == ("PL", 2024, datetime(2025, 3, 1, 12, 0), "PL")
    assert [r[0] for r in rows] == ["PL", "BL1", "PL"]


class CountingLake(LocalLake):
    """A local lake that remembers which keys were read and which prefixes were listed."""

    def __init__(self, root):
        super().__init__(root)
        self.reads: list[str] = []
        self.listed: list[str] = []

    def read(self, key):
        self.reads.append(key)
        return super().read(key)

    def list(self, prefix):
        self.listed.append(prefix)
        return super().list(prefix)


def _snapshot_row(key: str, endpoint: str, matchday: int, confirmed: str = "2025-03-01T13:00:00+00:00") -> dict:
    return {
        "endpoint": endpoint,
        "competition_code": "PL",
        "season_year": 2024,
        "file_name": key,
        "content_sha256": f"sha-{matchday}",
        "matchday": matchday,
        "first_seen_at": "2025-03-01T12:00:00+00:00",
        "last_confirmed_at": confirmed,
        "confirmations": 3,
    }


def test_duckdb_load_of_named_keys_reads_only_those_files_and_replaces_the_season_ledger(tmp_path):
    lake, warehouse = CountingLake(tmp_path / "lake"), tmp_path / "warehouse.duckdb"
    old = _land_sample(lake, codes=("PL", "BL1"))
    assert load_duckdb(lake, warehouse)["standings"] == 2
    new = _land_sample(lake, codes=("PL",), at=START + timedelta(hours=2))
    lake.reads.clear(), lake.listed.clear()
    rows = [_snapshot_row(old[0], "standings", 1), _snapshot_row(new[0], "standings", 2)]
    added = load_duckdb(lake, warehouse, keys={"standings": [new[0]], "scorers": [new[1]]}, snapshots=rows)
    assert added == {"standings": 1, "scorers": 1, "snapshots": 2}
    assert sorted(lake.reads) == sorted(new) and lake.listed == []  # no scan of the history
    rows[1]["last_confirmed_at"] = "2025-03-01T15:00:00+00:00"
    assert load_duckdb(lake, warehouse, keys={"standings": [new[0]]}, snapshots=rows[1:]) == {
        "standings": 0,
        "scorers": 0,
        "snapshots": 1,
    }
    with duckdb.connect(str(warehouse), read_only=True) as con:
        ledger = con.execute("select file_name, matchday, last_confirmed_at from raw.football_snapshots").fetchall()
    # The second load replaced the whole (endpoint, competition, season): the season's ledger, not a merge.
    assert ledger == [(new[0], 2, datetime(2025, 3, 1, 15, 0))]


def test_snowflake_ddl_and_copy_parse_in_the_snowflake_dialect():
    layout = SnowflakeLayout()
    statements = [
        *snowflake_ddl(layout, "s3://lake/raw/football/", "INSIGHTFLOW_S3"),
        copy_sql(layout, "standings", ["PL", "BL1"], [2024]),
    ]
    for statement in statements:
        sqlglot.parse_one(statement, read="snowflake")
    assert "storage_integration = INSIGHTFLOW_S3" in statements[-2]
    assert "pattern = '.*competition=(BL1|PL)/season=(2024)/" in statements[-1]
    files = copy_files_sql(
        layout, "scorers", ["raw/football/scorers/competition=PL/season=2024/20250301T120000.000000Z.json"]
    )
    sqlglot.parse_one(files, read="snowflake")
    assert (
        "from @RAW.FOOTBALL_LAKE/scorers/) files = ('competition=PL/season=2024/20250301T120000.000000Z.json')" in files
    )


def test_snowflake_copy_into_from_a_file_stage_is_idempotent_on_fakesnow(fakesnow_server, tmp_path):
    lake = LocalLake(tmp_path / "lake")
    _land_sample(lake)
    _land_sample(lake, codes=("SA",))  # not asked for: PATTERN must leave it alone
    # fakesnow cannot read s3://, so the stage points at a file:// copy of the lake prefix.
    copy = tmp_path / "stage-copy"
    shutil.copytree(Path(lake.uri("raw/football")), copy)
    url = copy.resolve().as_uri() + "/"
    connector = fakesnow_connector(fakesnow_server, "FOOTBALL_LOAD_TEST")
    layout = SnowflakeLayout()

    first = load_snowflake(connector, layout, url, None, ["PL", "BL1"], [2024])
    assert sorted((r["endpoint"], r["status"], r["rows_loaded"]) for r in first) == (
        [("scorers", "LOADED", 1)] * 2 + [("standings", "LOADED", 1)] * 2
    )
    second = load_snowflake(connector, layout, url, None, ["PL", "BL1"], [2024])
    assert {r["status"] for r in second} == {"LOAD_SKIPPED"}

    rows = connector.fetch_all(
        "select file_name, document:competition.code::varchar, loaded_at from RAW.FOOTBALL_STANDINGS order by file_name"
    )
    connector.reset_cursors()
    assert [(r[0].split("/")[1], r[1]) for r in rows] == [("competition=BL1", "BL1"), ("competition=PL", "PL")]
    assert all(r[0].startswith("standings/competition=") and r[2] is not None for r in rows)

    # A tick names its new files: only those are copied, and the season's ledger rows are replaced.
    new = _land_sample(lake, codes=("PL",), at=START + timedelta(hours=2))
    for key in new:
        target = copy / key[len("raw/football/") :]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(lake.read(key))
    ledger = [_snapshot_row(new[0], "standings", 2)]
    third = load_snowflake(connector, layout, url, None, ["PL"], [2024], keys={"standings": [new[0]]}, snapshots=ledger)
    assert [(r["endpoint"], r["status"]) for r in third] == [("standings", "LOADED")]
    snapshots = connector.fetch_all("select file_name, matchday, last_confirmed_at from RAW.FOOTBALL_SNAPSHOTS")
    connector.reset_cursors()
    assert [tuple(r) for r in snapshots] == [(new[0][len("raw/football/") :], 2, datetime(2025, 3, 1, 13, 0))]
    connector.close()


def test_stage_url_of_an_s3_lake_is_the_raw_football_prefix(moto_endpoint, monkeypatch, tmp_path):
    import boto3
    from prefect_aws import AwsClientParameters, AwsCredentials
    from prefect_aws.s3 import S3Bucket

    from tasks.core.lake.s3 import S3Lake

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1").create_bucket(Bucket="football-lake")
    credentials = AwsCredentials(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
        aws_client_parameters=AwsClientParameters(endpoint_url=moto_endpoint),
    )
    lake = S3Lake(S3Bucket(bucket_name="football-lake", bucket_folder="prod", credentials=credentials))
    keys = _land_sample(lake, codes=("PL",))
    assert lake.list("raw/football/") == sorted(keys)
    assert json.loads(lake.read(keys[0]))["competition"]["code"] == "PL"
    assert stage_url(lake) == "s3://football-lake/prod/raw/football/"
