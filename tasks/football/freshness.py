"""Are the standings late? In season, a competition whose matchday has not moved while fixtures were due.

Every tick succeeds when football-data.org keeps answering 304 or the same table, so a feed that stops
(an API-side freeze, a mirror that stopped syncing, a competition code that now answers an old season)
raises no failure alert. Here each competition's standings are judged after the tick, from what the API
itself returns and what the lake recorded:

- the season's ``startDate`` and ``endDate`` (outside them: ``off season``, not judged);
- its ``currentMatchday`` and, from the TOTAL table, the season's matchdays (a double round-robin:
  2 × (teams − 1)) and whether every team has played them all, or a ``winner`` is set (``finished``,
  not judged);
- the season ledger (``_snapshots.json``): when the current matchday was first seen (``matchday since``).

**Due** means the season's own calendar expects a later matchday: its matchdays spread evenly over its
dates (``pace`` = season length / matchdays) put matchday ``k`` at ``startDate + (k − 1) × pace``, so on
``as_of`` the calendar's matchday is ``1 + (as_of − startDate) // pace`` (at most the last). Standings are **stale** when,
in season and unfinished, that calendar matchday is past the current one and the current matchday has
not changed for more than ``allowed_days`` (default 21: the longest regular break in the big leagues'
calendars, the Bundesliga's winter break, is about three weeks; an international break is two). A
planned longer break (a World Cup) alerts once; raise ``stale_after_days`` for it.

A stale competition leaves the tick Completed and emits ``football.standings.stale`` (resource
``football.competition.<code>``) once per stale state, ``(season, matchday)``: the state is kept in the
lake (``state/football_freshness.json``), and a later tick with the same matchday does not emit again.
A new matchday emits ``football.standings.fresh``. The ``insightflow-football-stale-alert`` automation
(automations/) turns the stale event into a notification. Judged against today (UTC) unless ``as_of``
is given (to see what a tick on that day would say, and in tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event

from tasks.core.lake import Lake
from tasks.football.snapshots import Outcome, read_ledger

STATE_KEY = "state/football_freshness.json"
STALE_EVENT = "football.standings.stale"
FRESH_EVENT = "football.standings.fresh"
DEFAULT_ALLOWED_DAYS = 21
Status = Literal["fresh", "stale", "off season", "finished", "unknown"]


@dataclass(frozen=True)
class StandingsVerdict:
    """One competition's standings lateness as a tick saw it."""

    competition: str
    season: str
    status: Status
    current_matchday: int | None = None
    matchdays: int | None = None
    calendar_matchday: int | None = None
    matchday_since: str = ""
    days_without_new_matchday: int | None = None
    allowed_days: int = DEFAULT_ALLOWED_DAYS
    season_start: str = ""
    season_end: str = ""
    reason: str = ""

    def row(self) -> dict[str, Any]:
        na = "n/a"
        return {
            "competition": self.competition,
            "season": self.season,
            "matchday": na if self.current_matchday is None else f"{self.current_matchday} of {self.matchdays}",
            "calendar matchday": na if self.calendar_matchday is None else self.calendar_matchday,
            "matchday since": self.matchday_since or na,
            "days without a new matchday": na
            if self.days_without_new_matchday is None
            else self.days_without_new_matchday,
            "allowed (days)": self.allowed_days,
            "status": self.status,
            "note": self.reason,
        }


def _total_table(document: dict[str, Any]) -> list[dict[str, Any]]:
    for standing in document.get("standings") or []:
        if standing.get("type") == "TOTAL":
            return standing.get("table") or []
    return []


def _matchday_since(ledger: Sequence[dict[str, Any]], matchday: int, fallback: str) -> date:
    """The day the current matchday was first seen: the first snapshot of the unbroken run ending now."""
    since = fallback
    for entry in reversed(ledger):
        if entry.get("matchday") != matchday:
            break
        since = entry["first_seen_at"]
    return datetime.fromisoformat(since).astimezone(UTC).date()


def assess(
    competition: str,
    season: str,
    document: dict[str, Any] | None,
    ledger: Sequence[dict[str, Any]],
    latest_first_seen: str,
    as_of: date,
    allowed_days: int = DEFAULT_ALLOWED_DAYS,
) -> StandingsVerdict:
    """Judge one competition's latest standings ``document`` (as the API returned it) on ``as_of``."""
    base = {"competition": competition, "season": season, "allowed_days": allowed_days}
    info = (document or {}).get("season") or {}
    table = _total_table(document or {})
    current = info.get("currentMatchday")
    try:
        start, end = date.fromisoformat(info["startDate"]), date.fromisoformat(info["endDate"])
    except (KeyError, TypeError, ValueError):
        return StandingsVerdict(**base, status="unknown", reason="no season dates in the standings")
    base |= {"season_start": start.isoformat(), "season_end": end.isoformat(), "current_matchday": current}
    if not (start <= as_of <= end):
        return StandingsVerdict(**base, status="off season", reason=f"season runs {start} to {end}")
    if not table or not isinstance(current, int):
        return StandingsVerdict(**base, status="unknown", reason="no TOTAL table or currentMatchday")
    total = 2 * (len(table) - 1)
    base["matchdays"] = total
    if info.get("winner") or all((row.get("playedGames") or 0) >= total for row in table):
        return StandingsVerdict(**base, status="finished", reason="every team has played all its matches")
    # 1 + elapsed // pace, with pace = season days / matchdays, in whole numbers.
    calendar = min(total, 1 + (as_of - start).days * total // max(1, (end - start).days))
    since = _matchday_since(ledger, current, latest_first_seen)
    idle = max(0, (as_of - since).days)
    base |= {"calendar_matchday": calendar, "matchday_since": since.isoformat(), "days_without_new_matchday": idle}
    if calendar > current and idle > allowed_days:
        reason = (
            f"no new matchday for {idle} days (allowed {allowed_days}): matchday {current} since {since}, "
            f"while the season's calendar is at matchday {calendar} of {total}"
        )
        return StandingsVerdict(**base, status="stale", reason=reason)
    return StandingsVerdict(**base, status="fresh")


def changes(previous: dict, verdicts: Sequence[StandingsVerdict]) -> tuple[list, list]:
    """(newly stale, fresh again): a stale state is (season, matchday); the same one again is not news."""
    stale, recovered = [], []
    for v in verdicts:
        before = previous.get(v.competition) or {}
        state = (before.get("status"), before.get("season"), before.get("current_matchday"))
        if v.status == "stale" and state != ("stale", v.season, v.current_matchday):
            stale.append(v)
        elif v.status != "stale" and before.get("status") == "stale":
            recovered.append(v)
    return stale, recovered


def _emit(event: str, verdict: StandingsVerdict, as_of: date) -> None:
    emit_event(
        event=event,
        resource={
            "prefect.resource.id": f"football.competition.{verdict.competition}",
            "prefect.resource.name": verdict.competition,
            "football.season": verdict.season,
        },
        payload={**asdict(verdict), "as_of": as_of.isoformat()},
    )


@task(name="check-standings-lateness", cache_policy=NO_CACHE)
def check_standings_lateness(
    lake: Lake, outcomes: Sequence[Outcome], as_of: date | None = None, allowed_days: int = DEFAULT_ALLOWED_DAYS
) -> list[StandingsVerdict]:
    """Judge each competition's standings, emit an event on a change to or from stale, record the verdicts."""
    logger = get_run_logger()
    as_of = as_of or datetime.now(UTC).date()
    verdicts = []
    for outcome in outcomes:
        if outcome.endpoint != "standings":
            continue
        document = lake.read_json(outcome.key)
        ledger = read_ledger(lake, outcome.competition, "standings", outcome.season)
        verdicts.append(
            assess(outcome.competition, outcome.season, document, ledger, outcome.first_seen_at, as_of, allowed_days)
        )
    previous = lake.read_json(STATE_KEY) or {}
    stale, recovered = changes(previous, verdicts)
    for verdict in stale:
        logger.warning("%s standings are stale (as of %s): %s", verdict.competition, as_of, verdict.reason)
        _emit(STALE_EVENT, verdict, as_of)
    for verdict in recovered:
        logger.info(
            "%s standings are %s again (matchday %s)", verdict.competition, verdict.status, verdict.current_matchday
        )
        _emit(FRESH_EVENT, verdict, as_of)
    recorded = {
        **previous,
        **{
            v.competition: {"status": v.status, "season": v.season, "current_matchday": v.current_matchday}
            for v in verdicts
        },
    }
    if recorded != previous:  # an unchanged tick writes nothing
        lake.write_json(STATE_KEY, recorded)
    return verdicts
