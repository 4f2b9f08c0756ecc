"""The retrying GET against a real loopback server (no HTTP mocks)."""

from __future__ import annotations

import random
import time
from email.utils import formatdate

import httpx
import pytest

from tasks.core import http
from tasks.insightflow.sample.server import SampleServer

pytestmark = pytest.mark.unit

FAST = http.RetryPolicy(attempts=4, backoff_base_s=0.01, backoff_cap_s=0.05, timeout_s=2)


@pytest.fixture
def server():
    srv = SampleServer(payloads={"/f": b"PAR1-payload-PAR1"}, retry_after_s=0.3)
    with srv.running():
        yield srv


def test_parse_retry_after_accepts_seconds_and_http_dates():
    assert http.parse_retry_after("7") == 7.0
    assert http.parse_retry_after(None) is None
    assert http.parse_retry_after("soon") is None
    now = 1_700_000_000
    assert http.parse_retry_after(formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30, abs=1)
    assert http.parse_retry_after(formatdate(now - 30, usegmt=True), now=now) == 0.0


def test_backoff_grows_exponentially_with_jitter_and_is_capped():
    policy = http.RetryPolicy(backoff_base_s=1, backoff_cap_s=10)
    rng = random.Random(1)
    for attempt, ceiling in [(1, 1), (2, 2), (3, 4), (4, 8), (5, 10), (9, 10)]:
        waits = [policy.backoff(attempt, rng) for _ in range(50)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
        assert len(set(waits)) > 1  # jittered, not a fixed schedule


def test_get_retries_5xx_burst_then_succeeds(server):
    server.set_fault("/f", "5xx:2")
    with httpx.Client() as client:
        response = http.get(client, server.url("/f"), what="dataset t", policy=FAST)
    assert response.status_code == 200
    assert [r["status"] for r in server.requests] == [503, 503, 200]


def test_get_gives_up_on_persistent_5xx_naming_what_and_url(server):
    server.set_fault("/f", "5xx")
    with httpx.Client() as client, pytest.raises(http.FetchError) as err:
        http.get(client, server.url("/f"), what="dataset t", policy=FAST)
    assert err.value.transient and err.value.status == 503
    assert "dataset t" in str(err.value) and server.url("/f") in str(err.value) and "4 attempts" in str(err.value)
    assert server.count("/f") == 4


def test_get_honours_retry_after_on_429(server):
    server.set_fault("/f", "429:1")
    started = time.monotonic()
    with httpx.Client() as client:
        response = http.get(client, server.url("/f"), what="dataset t", policy=FAST)
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.3  # waited as told, not the 0.01 s backoff
    assert [r["status"] for r in server.requests] == [429, 200]


def test_get_refuses_to_wait_longer_than_its_cap(server):
    server.retry_after_s = 3600
    server.set_fault("/f", "429")
    with httpx.Client() as client, pytest.raises(http.FetchError, match="retry after 3600s"):
        http.get(client, server.url("/f"), what="dataset t", policy=FAST)
    assert server.count("/f") == 1


def test_get_fails_fast_on_404(server):
    with httpx.Client() as client, pytest.raises(http.FetchError) as err:
        http.get(client, server.url("/missing"), what="dataset t", policy=FAST)
    assert not err.value.transient and err.value.status == 404
    assert server.count("/missing") == 1


def test_get_times_out_slow_responses_and_retries(server):
    server.set_fault("/f", "slow:1")
    policy = http.RetryPolicy(attempts=2, backoff_base_s=0.01, backoff_cap_s=0.01, timeout_s=0.2)
    with httpx.Client() as client, pytest.raises(http.FetchError, match="timed out") as err:
        http.get(client, server.url("/f"), what="dataset t", policy=policy)
    assert err.value.transient
    assert server.count("/f") == 2


def test_get_reports_connection_refused_as_transient():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with httpx.Client() as client, pytest.raises(http.FetchError, match="connection failed") as err:
        http.get(client, f"http://127.0.0.1:{port}/x", what="dataset t", policy=FAST)
    assert err.value.transient
