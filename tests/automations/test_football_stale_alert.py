"""Stale football standings reach the alert webhook once per stale state, on a real Prefect server.

As docs/operations.md ("Stale football standings") tells an operator: ``python -m blocks register --only
alerts`` points the alert block at a loopback webhook, ``python -m automations apply`` applies every alert,
and football ticks run as ``python flows/football.py --sample`` (the sample server answers the season
asked for, so the season is the one in progress on the judging day). Ticks:

1. matchday 2 landed today, judged 30+ days later: stale (no new matchday for that long while the
   season's calendar is far past matchday 2): one alert naming the competition and the numbers;
2. the same again: still stale, not news: no second alert;
3. matchday 3 lands (judged today): fresh again, no alert;
4. matchday 3 judged 30+ days later: a new stale state: a second alert.

Expected numbers are worked out here from the dates: days since today, and the calendar matchday as
1 + elapsed days × 38 // season days.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest

from tests.deploy.test_prefect_yaml import client_for, server_python
from tests.support.deploy import REPO_ROOT, E2EServer, Processes

pytestmark = [pytest.mark.deploy, pytest.mark.e2e, pytest.mark.timeout(600)]

MATCHDAYS = 38  # the sample's PL: 20 teams, a double round-robin


def judging_day(today: date) -> tuple[int, date]:
    """A season in progress 30+ days from today (the sample's seasons run 08-16 to 05-25) and that day."""
    as_of = today + timedelta(days=30)
    season = as_of.year if as_of >= date(as_of.year, 8, 16) else as_of.year - 1
    if as_of > date(season + 1, 5, 25):  # the summer gap: judge the next season instead
        season += 1
    return season, max(as_of, date(season, 8, 16) + timedelta(days=30))


@pytest.fixture(scope="module")
def alert_server(prefect_server, tmp_path_factory) -> Iterator[E2EServer]:
    """The session's server; every automation made here is deleted after."""
    home = tmp_path_factory.mktemp("football-lateness")
    server = E2EServer(prefect_server, prefect_server.removesuffix("/api"), home, Processes(home))
    try:
        yield server
    finally:
        with client_for(server) as client:
            for automation in client.read_automations():
                if automation.name.startswith("insightflow-"):
                    client.delete_automation(automation.id)


def football_alerts(receiver) -> list[dict]:
    return [m for m in receiver.messages if "standings stale" in m.get("subject", "")]


def tick(server: E2EServer, home, season: int, matchday: int, as_of: date) -> str:
    args = ["--sample", "--no-dbt", "--season", str(season), "--sample-matchday", str(matchday)]
    args += ["--freshness-as-of", as_of.isoformat(), "--home", str(home)]
    done = subprocess.run(
        [sys.executable, "flows/football.py", *args],
        env=server.env(),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def wait_for(receiver, count: int, timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    while len(football_alerts(receiver)) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    return football_alerts(receiver)


def test_stale_standings_alert_once_per_stale_state(alert_server, webhook_receiver, tmp_path):
    server = alert_server
    alert_env = server.env(INSIGHTFLOW_ALERT_WEBHOOK_URL=webhook_receiver.url)
    server_python(server, ["-m", "blocks", "register", "--only", "alerts"], alert_env)
    assert "automation/insightflow-football-stale-alert: created" in server_python(
        server, ["-m", "automations", "apply"], alert_env
    )
    today = datetime.now(UTC).date()
    season, as_of = judging_day(today)
    start, end = date(season, 8, 16), date(season + 1, 5, 25)
    calendar = 1 + (as_of - start).days * MATCHDAYS // (end - start).days
    idle = (as_of - today).days
    assert calendar > 3 and idle > 21, "the judging day must make matchday 2 and 3 late"
    home = tmp_path / "home"

    # 1. Matchday 2 landed today, judged `idle` days later.
    out = tick(server, home, season, 2, as_of)
    assert "standings are stale" in out, out[-3000:]
    (alert,) = wait_for(webhook_receiver, 1, timeout=60)
    print(f"\nfootball stale alert:\n{alert['subject']}\n{alert['body']}")
    assert alert["subject"] == f"InsightFlow: football PL standings stale: no new matchday in {idle} days"
    body = alert["body"]
    assert f"Competition: PL, season {season} ({start} to {end})" in body
    assert f"Matchday: 2 of {MATCHDAYS}, first seen {today}" in body
    assert f"the season's calendar is at matchday {calendar}" in body
    assert f"Judged as of {as_of} (allowed 21 days" in body and "Run: " in body

    # 2. The same state on the next tick: not news.
    tick(server, home, season, 2, as_of)
    # 3. Matchday 3 lands, judged today: fresh again (an event, no alert).
    assert "standings are fresh again" in tick(server, home, season, 3, today)
    time.sleep(3)  # a repeat would be right behind its tick, as the first alert was
    assert len(football_alerts(webhook_receiver)) == 1, [m["subject"] for m in webhook_receiver.messages]

    # 4. Matchday 3, judged `idle` days later: a new stale state, a second alert.
    tick(server, home, season, 3, as_of)
    alerts = wait_for(webhook_receiver, 2, timeout=60)
    assert len(alerts) == 2 and "Matchday: 3 of" in alerts[1]["body"], alerts
