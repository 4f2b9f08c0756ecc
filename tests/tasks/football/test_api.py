"""The football-data.org client against the loopback v4 server: pacing, 429, fail-fast errors, validation."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime

import httpx
import pytest

from tasks.core.http import RetryPolicy
from tasks.core.lake import LocalLake
from tasks.football.api import (
    Fetched,
    FetchSession,
    FootballApiError,
    InvalidResponseError,
    MissingTokenError,
    RatePacer,
    fetch,
    resolve_token,
)
from tasks.football.land import land, parse_raw_key, validate
from tasks.football.sample.data import SAMPLE_TOKEN, scorers, standings
from tasks.football.sample.server import Fault, SampleServer

pytestmark = pytest.mark.integration

FAST = RetryPolicy(attempts=5, backoff_base_s=0.05, backoff_cap_s=0.2, timeout_s=5)


def _session(server: SampleServer, token: str = SAMPLE_TOKEN) -> FetchSession:
    return FetchSession(root=server.url, token=token, policy=FAST)


def _fetch(session: FetchSession, code: str, endpoint: str = "standings") -> Fetched:
    return fetch(session.client, session.root, session.token, code, endpoint, None, session.pacer, session.policy)


def test_pacer_waits_for_the_reset_only_when_the_budget_is_spent():
    now = [100.0]
    slept: list[float] = []
    pacer = RatePacer(margin_s=0.5, clock=lambda: now[0], sleep=slept.append)
    ok = httpx.Response(200, headers={"X-Requests-Available-Minute": "1", "X-RequestCounter-Reset": "40"})
    pacer.observe(ok)
    assert pacer.pace() == 0 and slept == []
    spent = httpx.Response(200, headers={"X-Requests-Available-Minute": "0", "X-RequestCounter-Reset": "12"})
    pacer.observe(spent)
    now[0] += 2
    assert pacer.pace() == pytest.approx(10.5)
    assert slept == [pytest.approx(10.5)]
    assert pacer.pace() == 0  # the window reset: spend freely until the next response says otherwise


def test_fetch_paces_six_requests_through_a_four_request_window_without_a_429():
    with SampleServer(per_minute=4, window_s=2.0) as server:
        session = _session(server)
        started = time.monotonic()
        for code in ("PL", "BL1", "SA"):
            for endpoint in ("standings", "scorers"):
                _fetch(session, code, endpoint)
        elapsed = time.monotonic() - started
    assert server.throttled == 0
    assert [status for _, status in server.log] == [200] * 6
    assert elapsed >= 1.0 and session.pacer.waited_s > 0


def test_a_forced_429_is_waited_out_and_retried(sample_server: SampleServer):
    sample_server.spend(sample_server.per_minute)  # another client sharing the token used this window up
    session = _session(sample_server)
    started = time.monotonic()
    fetched = _fetch(session, "PL")
    assert time.monotonic() - started >= 1.0
    assert json.loads(fetched.body)["competition"]["code"] == "PL"
    assert [status for _, status in sample_server.log] == [429, 200]


@pytest.mark.parametrize(
    ("code", "token", "status", "message"),
    [
        ("CL", SAMPLE_TOKEN, 403, "restricted and apparently not within your permissions"),
        ("XX", SAMPLE_TOKEN, 404, "does not exist"),
        ("PL", "wrong-token", 400, "Your API token is invalid."),
    ],
)
def test_permanent_errors_fail_fast_with_the_api_message_and_competition(sample_server, code, token, status, message):
    session = _session(sample_server, token)
    with pytest.raises(FootballApiError) as raised:
        _fetch(session, code)
    assert raised.value.status == status and not raised.value.transient
    assert f"competition {code}, endpoint standings" in str(raised.value)
    assert message in str(raised.value)
    assert len(sample_server.log) == 1  # no retry
    assert token not in str(raised.value)


def test_a_5xx_burst_is_retried_until_success(sample_server):
    sample_server.add_faults(
        "/v4/competitions/PL/scorers",
        Fault(503, "<html>busy</html>", "text/html"),
        Fault(502),
        Fault(500, '{"message": "oops"}'),
    )
    fetched = _fetch(_session(sample_server), "PL", "scorers")
    assert json.loads(fetched.body)["scorers"]
    assert [status for _, status in sample_server.log] == [503, 502, 500, 200]


def test_resolve_token_without_block_or_variable_names_both():
    with pytest.raises(MissingTokenError, match="FOOTBALL_DATA_TOKEN"):
        resolve_token(block_name=None, env={})
    assert resolve_token(block_name=None, env={"FOOTBALL_DATA_TOKEN": " abc "}) == "abc"


def _fetched(endpoint: str, body: bytes, content_type: str = "application/json") -> Fetched:
    return Fetched(
        competition="PL",
        endpoint=endpoint,
        season=None,
        url="http://x",
        body=body,
        content_type=content_type,
        fetched_at=datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC),
    )


def _without(document: dict, path: list) -> dict:
    doc = json.loads(json.dumps(document))
    target = doc
    for part in path[:-1]:
        target = target[part]
    del target[path[-1]]
    return doc


@pytest.mark.parametrize(
    ("endpoint", "body", "content_type", "cause"),
    [
        ("standings", b"<html><body>Maintenance</body></html>", "text/html", "body is not JSON (text/html"),
        (
            "standings",
            json.dumps(_without(standings("PL"), ["standings", 0, "table", 2, "points"])).encode(),
            "application/json",
            "standings TOTAL row 2: missing points",
        ),
        (
            "standings",
            json.dumps({**standings("PL"), "standings": [{**standings("PL")["standings"][1]}]}).encode(),
            "application/json",
            "no standings table of type TOTAL",
        ),
        (
            "scorers",
            json.dumps(_without(scorers("PL"), ["scorers", 0, "player"])).encode(),
            "application/json",
            "scorers row 0: missing player.id, player.name",
        ),
        (
            "scorers",
            json.dumps(_without(scorers("PL"), ["competition"])).encode(),
            "application/json",
            "missing competition.code",
        ),
    ],
    ids=["html-with-200", "standings-row-without-points", "no-total-table", "scorer-without-player", "no-competition"],
)
def test_unusable_bodies_are_quarantined_with_an_error_naming_competition_endpoint_and_cause(
    tmp_path, endpoint, body, content_type, cause
):
    lake = LocalLake(tmp_path)
    with pytest.raises(InvalidResponseError) as raised:
        land(lake, _fetched(endpoint, body, content_type))
    message = str(raised.value)
    assert f"competition PL, endpoint {endpoint}" in message and cause in message
    assert raised.value.quarantine_key.startswith(f"quarantine/football/{endpoint}/competition=PL/")
    assert lake.read(raised.value.quarantine_key) == body
    assert lake.list("raw") == []


def test_valid_bodies_land_as_received_under_the_raw_key(tmp_path):
    lake = LocalLake(tmp_path)
    body = json.dumps(standings("PL")).encode()
    key = land(lake, _fetched("standings", body))
    assert key == "raw/football/standings/competition=PL/season=2024/20250301T120000.123456Z.json"
    assert lake.read(key) == body
    assert parse_raw_key(key) == {
        "endpoint": "standings",
        "competition": "PL",
        "season": "2024",
        "fetched_at": "2025-03-01T12:00:00.123456+00:00",
    }


@pytest.mark.parametrize("code", ["PL", "BL1", "SA", "PD", "FL1"])
def test_the_sample_is_valid_and_internally_consistent(code):
    assert validate(standings(code), "standings") == []
    assert validate(scorers(code, limit=100), "scorers") == []
    total = standings(code)["standings"][0]["table"]
    assert all(r["won"] + r["draw"] + r["lost"] == r["playedGames"] for r in total)
    assert sum(r["goalsFor"] for r in total) == sum(r["goalsAgainst"] for r in total)


def test_the_token_stays_out_of_logs_and_the_lake(sample_server, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    sample_server.add_faults("/v4/competitions/PL/standings", Fault(503))
    lake = LocalLake(tmp_path)
    session = _session(sample_server)
    land(lake, _fetch(session, "PL"))
    assert SAMPLE_TOKEN not in caplog.text
    assert all(SAMPLE_TOKEN.encode() not in p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert SAMPLE_TOKEN not in repr(session)
