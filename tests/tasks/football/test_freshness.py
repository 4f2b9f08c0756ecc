"""Football standings lateness (tasks/football/freshness.py): what "due" and "stale" mean, worked by hand.

A 20-team league (38 matchdays) whose season runs 2025-08-16 to 2026-05-24: 281 days, so the calendar
puts matchday k at day (k − 1) × 281 / 38 ≈ 7.39 (k − 1). On 2025-12-31, 137 days in, the calendar is at
matchday 1 + 137 × 38 // 281 = 1 + 18 = 19 (5206 // 281 = 18).
"""

from __future__ import annotations

import re
from dataclasses import asdict, fields
from datetime import date
from uuid import uuid4

import pytest

from tasks.football.freshness import StandingsVerdict, assess, changes

pytestmark = pytest.mark.unit

START, END = date(2025, 8, 16), date(2026, 5, 24)


def standings(current: int, played: int, teams: int = 20, winner: dict | None = None) -> dict:
    table = [{"position": i + 1, "team": {"id": i}, "playedGames": played} for i in range(teams)]
    return {
        "season": {
            "startDate": START.isoformat(),
            "endDate": END.isoformat(),
            "currentMatchday": current,
            "winner": winner,
        },
        "standings": [{"type": "HOME", "table": []}, {"type": "TOTAL", "table": table}],
    }


LEDGER = [  # matchday 11 first seen on 11-30, matchday 12 on 12-06 and confirmed by later changes
    {"matchday": 11, "first_seen_at": "2025-11-30T17:00:00+00:00"},
    {"matchday": 12, "first_seen_at": "2025-12-06T12:30:00+00:00"},
    {"matchday": 12, "first_seen_at": "2025-12-07T19:00:00+00:00"},
]


def judge(document, as_of, ledger=LEDGER, allowed=21):
    return assess("PL", "2025", document, ledger, ledger[-1]["first_seen_at"] if ledger else "", as_of, allowed)


def test_in_season_with_the_calendar_ahead_and_no_new_matchday_for_too_long_is_stale():
    verdict = judge(standings(current=12, played=11), date(2025, 12, 31))
    assert verdict.status == "stale"
    assert verdict.matchdays == 38 and verdict.current_matchday == 12
    assert verdict.calendar_matchday == 19
    assert verdict.matchday_since == "2025-12-06"  # the first snapshot of the unbroken matchday-12 run
    assert verdict.days_without_new_matchday == 25
    assert "no new matchday for 25 days (allowed 21)" in verdict.reason


def test_a_short_gap_or_a_calendar_that_is_not_ahead_is_not_stale():
    assert judge(standings(current=12, played=11), date(2025, 12, 20)).status == "fresh"  # 14 days: a break
    # 25 days idle, but the calendar (matchday 1 + 25*38//281 = 4) is not past the current matchday 12
    early = judge(
        standings(current=12, played=11),
        date(2025, 9, 10),
        ledger=[{"matchday": 12, "first_seen_at": "2025-08-16T00:00:00+00:00"}],
    )
    assert early.days_without_new_matchday == 25 and early.calendar_matchday == 4 and early.status == "fresh"
    assert judge(standings(current=12, played=11), date(2025, 12, 31), allowed=30).status == "fresh"


def test_outside_the_season_or_once_every_match_is_played_nothing_is_judged():
    assert judge(standings(current=38, played=37), date(2026, 6, 10)).status == "off season"
    assert judge(standings(current=38, played=37), date(2025, 8, 1)).status == "off season"
    assert judge(standings(current=38, played=38), date(2026, 5, 24)).status == "finished"
    assert judge(standings(current=38, played=37, winner={"id": 1}), date(2026, 5, 20)).status == "finished"
    assert judge({"season": {}}, date(2025, 12, 31)).status == "unknown"
    assert judge(None, date(2025, 12, 31)).status == "unknown"


def test_a_stale_state_is_news_once_per_season_and_matchday():
    stale = judge(standings(current=12, played=11), date(2025, 12, 31))
    assert changes({}, [stale]) == ([stale], [])
    recorded = {"PL": {"status": "stale", "season": "2025", "current_matchday": 12}}
    assert changes(recorded, [stale]) == ([], [])  # the next tick, same matchday: not news
    later = StandingsVerdict(**{**asdict(stale), "current_matchday": 13})
    assert changes(recorded, [later]) == ([later], [])  # a new matchday, still too late: news again
    fresh = judge(standings(current=12, played=11), date(2025, 12, 20))
    assert changes(recorded, [fresh]) == ([], [fresh])


def test_the_alert_reacts_to_the_stale_event_and_names_only_fields_the_event_carries():
    from automations.alerts import FOOTBALL_STALE_BODY, FOOTBALL_STALE_SUBJECT, definitions
    from tasks.football.freshness import STALE_EVENT

    (alert,) = [a for a in definitions(uuid4()) if a.name == "insightflow-football-stale-alert"]
    assert alert.trigger.expect == {STALE_EVENT} and alert.trigger.posture == "Reactive"
    assert alert.trigger.match.root == {"prefect.resource.id": "football.competition.*"}
    used = set(re.findall(r"event\.payload\.(\w+)", FOOTBALL_STALE_SUBJECT + FOOTBALL_STALE_BODY))
    carried = {f.name for f in fields(StandingsVerdict)} | {"as_of"}
    assert used and used <= carried, used - carried
