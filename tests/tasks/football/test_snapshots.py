"""Change detection against the loopback v4 server: hash rule, conditional requests, manifest, ledger, sync plan."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tasks.core.http import RetryPolicy
from tasks.core.lake import LocalLake
from tasks.football.api import Fetched, FetchSession
from tasks.football.sample.data import SAMPLE_TOKEN, scorers, standings
from tasks.football.sample.server import SampleServer
from tasks.football.snapshots import (
    content_sha256,
    ledger_key,
    manifest_key,
    mark_synced,
    plan_sync,
    read_ledger,
    read_manifest,
    record,
)
from tests.support.football import sample_tick

pytestmark = pytest.mark.integration

FAST = RetryPolicy(attempts=3, backoff_base_s=0.05, backoff_cap_s=0.2, timeout_s=5)


_tick = sample_tick


def _snapshot_files(lake) -> list[str]:
    return [k for k in lake.list("raw/football") if k.endswith("Z.json")]


@pytest.fixture
def season_server():
    with SampleServer(per_minute=1000) as server:
        server.play(1)
        yield server


@pytest.fixture
def session(season_server):
    session = FetchSession(root=season_server.url, token=SAMPLE_TOKEN, policy=FAST)
    yield session
    session.close()


def test_content_hash_ignores_last_updated_and_key_order_but_not_results_or_matchday():
    base = scorers("PL", limit=100, played=5, updated="2025-01-01T00:00:00Z")
    restamped = scorers("PL", limit=100, played=5, updated="2025-01-02T09:30:00Z")
    assert json.dumps(base) != json.dumps(restamped)
    assert content_sha256(base, "scorers") == content_sha256(restamped, "scorers")
    reordered = json.loads(json.dumps(base, sort_keys=True))
    reordered["filters"] = {"limit": 10}  # echoes the request: not content
    assert content_sha256(reordered, "scorers") == content_sha256(base, "scorers")

    table = standings("PL", played=5)
    assert content_sha256(table, "standings") == content_sha256(standings("PL", played=5), "standings")
    more_points = json.loads(json.dumps(table))
    more_points["standings"][0]["table"][3]["points"] += 1
    assert content_sha256(more_points, "standings") != content_sha256(table, "standings")
    next_matchday = json.loads(json.dumps(table))
    next_matchday["season"]["currentMatchday"] += 1
    assert content_sha256(next_matchday, "standings") != content_sha256(table, "standings")


def test_a_304_confirms_the_last_snapshot_without_landing_anything(tmp_path, season_server, session):
    lake = LocalLake(tmp_path)
    first = _tick(lake, season_server, session)
    assert [o.status for o in first] == ["landed", "landed"]
    files = _snapshot_files(lake)
    assert len(files) == 2

    second = _tick(lake, season_server, session)
    assert [o.status for o in second] == ["not_modified", "not_modified"]
    assert [status for _, status in season_server.log] == [200, 200, 304, 304]
    assert _snapshot_files(lake) == files
    manifest = read_manifest(lake, "PL", "standings")
    latest = manifest["seasons"]["2024"]["latest"]
    assert latest["key"] == first[0].key and latest["confirmations"] == 1
    assert latest["last_confirmed_at"] == second[0].last_confirmed_at > latest["first_seen_at"]


def test_a_new_etag_with_the_same_content_is_recorded_as_unchanged(tmp_path):
    lake = LocalLake(tmp_path)
    # volatile: every response re-stamps lastUpdated, so the body and its ETag change but the content does not.
    with SampleServer(per_minute=1000, volatile=True) as server:
        server.play(3)
        session = FetchSession(root=server.url, token=SAMPLE_TOKEN, policy=FAST)
        first = _tick(lake, server, session)
        first_etag = read_manifest(lake, "PL", "scorers")["requests"]["/v4/competitions/PL/scorers?limit=100"]["etag"]
        second = _tick(lake, server, session)
        session.close()
    assert [o.status for o in first] == ["landed", "landed"]
    assert [o.status for o in second] == ["not_modified", "unchanged"]  # standings carry no lastUpdated
    assert [status for _, status in server.log] == [200, 200, 304, 200]
    assert len(_snapshot_files(lake)) == 2
    request = read_manifest(lake, "PL", "scorers")["requests"]["/v4/competitions/PL/scorers?limit=100"]
    assert request["etag"] != first_etag and request["season"] == "2024"  # the next tick can get a 304


def test_a_played_matchday_lands_exactly_one_snapshot_per_endpoint_and_closes_the_previous(
    tmp_path, season_server, session
):
    lake = LocalLake(tmp_path)
    first = _tick(lake, season_server, session)
    confirming = _tick(lake, season_server, session)
    season_server.play(2)
    changed = _tick(lake, season_server, session)
    assert [o.status for o in changed] == ["landed", "landed"]
    assert len(_snapshot_files(lake)) == 4
    ledger = read_ledger(lake, "PL", "standings", "2024")
    assert [e["key"] for e in ledger] == [first[0].key, changed[0].key]
    assert [e["matchday"] for e in ledger] == [1, 2]
    # the closed snapshot keeps the time the last unchanged tick saw it
    assert ledger[0]["last_confirmed_at"] == confirming[0].last_confirmed_at
    assert ledger[1]["first_seen_at"] == ledger[1]["last_confirmed_at"] == changed[0].first_seen_at
    landed = json.loads(lake.read(changed[0].key))
    assert landed == standings("PL", played=2)


def test_the_sync_plan_is_idle_once_the_target_holds_the_latest_snapshot(tmp_path, season_server, session):
    lake = LocalLake(tmp_path)
    first = _tick(lake, season_server, session)
    plan = plan_sync(lake, first, "dev", "project-v1")
    assert plan.keys == {"standings": [first[0].key], "scorers": [first[1].key]} and plan.build
    assert sorted(r["file_name"] for r in plan.snapshots) == sorted(o.key for o in first)
    mark_synced(lake, plan, "project-v1")

    quiet = _tick(lake, season_server, session)
    assert plan_sync(lake, quiet, "dev", "project-v1").idle
    assert not plan_sync(lake, quiet, "prod", "project-v1").idle  # another warehouse has not loaded it yet
    rebuilt = plan_sync(lake, quiet, "dev", "project-v2")  # a deployed model change needs a build, not a load
    assert rebuilt.build and not any(rebuilt.keys.values())

    season_server.play(2)
    changed = _tick(lake, season_server, session)
    plan = plan_sync(lake, changed, "dev", "project-v1")
    assert plan.keys == {"standings": [changed[0].key], "scorers": [changed[1].key]}
    rows = [r for r in plan.snapshots if r["endpoint"] == "standings"]
    assert [(r["file_name"], r["matchday"]) for r in rows] == [(first[0].key, 1), (changed[0].key, 2)]


def test_a_tick_that_died_before_its_manifest_write_does_not_land_the_snapshot_twice(tmp_path, season_server, session):
    lake = LocalLake(tmp_path)
    _tick(lake, season_server, session)
    before = lake.read(manifest_key("PL", "standings"))
    season_server.play(2)
    changed = _tick(lake, season_server, session)
    lake.write(manifest_key("PL", "standings"), before)  # as if the process died after writing the ledger

    again = _tick(lake, season_server, session)
    assert again[0].status == "unchanged" and again[0].key == changed[0].key
    assert len(read_ledger(lake, "PL", "standings", "2024")) == 2
    assert len([k for k in _snapshot_files(lake) if "/standings/" in k]) == 2


def test_manifests_and_ledgers_live_in_an_s3_lake_too(moto_endpoint, monkeypatch, season_server, session):
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
    boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1").create_bucket(Bucket="football-manifests")
    credentials = AwsCredentials(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
        aws_client_parameters=AwsClientParameters(endpoint_url=moto_endpoint),
    )
    lake = S3Lake(S3Bucket(bucket_name="football-manifests", bucket_folder="prod", credentials=credentials))
    first = _tick(lake, season_server, session)
    second = _tick(lake, season_server, session)
    assert [o.status for o in second] == ["not_modified", "not_modified"]
    assert sorted(lake.list("raw/football/standings/")) == sorted(
        [manifest_key("PL", "standings"), ledger_key("PL", "standings", "2024"), first[0].key]
    )


def test_a_304_for_a_request_the_lake_never_landed_fails_naming_competition_and_endpoint(tmp_path):
    fetched = Fetched(
        "PL",
        "standings",
        None,
        "http://x/v4/competitions/PL/standings",
        b"",
        "application/json",
        datetime(2025, 3, 1, tzinfo=UTC) + timedelta(seconds=1),
        status=304,
    )
    with pytest.raises(Exception, match="competition PL, endpoint standings: HTTP 304"):
        record(LocalLake(tmp_path), fetched)
