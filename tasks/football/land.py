"""Validate a football-data.org response and land it as received in the raw lake (or quarantine it).

A 200 body must be JSON with the fields the dbt models read; it is then written unchanged under
``raw/football/<endpoint>/competition=<code>/season=<yyyy>/<fetched_at>.json`` (one object per
snapshot, atomic through the lake). A body that fails goes to ``quarantine/football/...`` and the
run fails naming the competition, the endpoint and the cause.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from tasks.core.lake import Lake
from tasks.football.api import Fetched, InvalidResponseError

RAW_PREFIX = "raw/football"
QUARANTINE_PREFIX = "quarantine/football"
FETCHED_AT_FORMAT = "%Y%m%dT%H%M%S.%fZ"
KEY_PATTERN = re.compile(
    r"^(?:.*/)?(?P<endpoint>standings|scorers)/competition=(?P<competition>[A-Z0-9]+)/season=(?P<season>\d{4})/"
    r"(?P<fetched_at>\d{8}T\d{6}\.\d{6}Z)\.json$"
)


def _missing(obj: Any, paths: tuple[str, ...]) -> list[str]:
    out = []
    for path in paths:
        value = obj
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is None:
            out.append(path)
    return out


STANDING_ROW_FIELDS = (
    "position",
    "team.id",
    "team.name",
    "playedGames",
    "won",
    "draw",
    "lost",
    "points",
    "goalsFor",
    "goalsAgainst",
)
SCORER_FIELDS = ("player.id", "player.name", "team.id", "team.name", "goals")
DOCUMENT_FIELDS = ("competition.code", "season.startDate")


def validate(document: Any, endpoint: str) -> list[str]:
    """Problems that would break the models (empty when the document is usable)."""
    if not isinstance(document, dict):
        return [f"expected a JSON object, got {type(document).__name__}"]
    problems = [f"missing {p}" for p in _missing(document, DOCUMENT_FIELDS)]
    if endpoint == "standings":
        tables = document.get("standings")
        totals = [t for t in tables or [] if isinstance(t, dict) and t.get("type") == "TOTAL"]
        if not isinstance(tables, list) or not totals:
            return [*problems, "no standings table of type TOTAL"]
        for table in totals:
            rows = table.get("table")
            if not isinstance(rows, list) or not rows:
                problems.append(f"standings table {table.get('stage')}/{table.get('group')} has no rows")
                continue
            for i, row in enumerate(rows):
                if gaps := _missing(row, STANDING_ROW_FIELDS):
                    problems.append(f"standings TOTAL row {i}: missing {', '.join(gaps)}")
    else:
        scorers = document.get("scorers")
        if not isinstance(scorers, list):
            return [*problems, "missing scorers list"]
        for i, row in enumerate(scorers):
            if gaps := _missing(row, SCORER_FIELDS):
                problems.append(f"scorers row {i}: missing {', '.join(gaps)}")
    return problems[:10]


def parse(fetched: Fetched) -> tuple[dict[str, Any] | None, str | None]:
    """The JSON document and None, or None and why the body is unusable."""
    try:
        document = json.loads(fetched.body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        kind = fetched.content_type.split(";")[0] or "unknown content type"
        return None, f"body is not JSON ({kind}; {exc.msg if hasattr(exc, 'msg') else exc})"
    problems = validate(document, fetched.endpoint)
    return (document, None) if not problems else (None, "; ".join(problems))


def season_of(fetched: Fetched, document: dict[str, Any] | None) -> str:
    """The season start year for the lake key: asked for, else the document's own, else 'current'."""
    if fetched.season:
        return str(fetched.season)
    start = ((document or {}).get("season") or {}).get("startDate") or ""
    return start[:4] if re.fullmatch(r"\d{4}-\d{2}-\d{2}", start) else "current"


def raw_key(fetched: Fetched, season: str) -> str:
    stamp = fetched.fetched_at.astimezone(UTC).strftime(FETCHED_AT_FORMAT)
    return f"{RAW_PREFIX}/{fetched.endpoint}/competition={fetched.competition}/season={season}/{stamp}.json"


def quarantine_key(fetched: Fetched, season: str) -> str:
    stamp = fetched.fetched_at.astimezone(UTC).strftime(FETCHED_AT_FORMAT)
    suffix = "json" if "json" in fetched.content_type else "html" if "html" in fetched.content_type else "bin"
    return f"{QUARANTINE_PREFIX}/{fetched.endpoint}/competition={fetched.competition}/season={season}/{stamp}.{suffix}"


def land(lake: Lake, fetched: Fetched) -> str:
    """Write a valid body to ``raw/football/...`` as received, or quarantine it and raise ``InvalidResponseError``."""
    document, problem = parse(fetched)
    season = season_of(fetched, document)
    if problem is not None:
        key = quarantine_key(fetched, season)
        lake.write(key, fetched.body)
        raise InvalidResponseError(fetched.competition, fetched.endpoint, problem, key)
    key = raw_key(fetched, season)
    lake.write(key, fetched.body)
    return key


def parse_raw_key(key: str) -> dict[str, str] | None:
    """endpoint, competition, season and fetched_at (ISO, UTC) from a raw lake key, or None."""
    match = KEY_PATTERN.match(key)
    if not match:
        return None
    parts = match.groupdict()
    at = datetime.strptime(parts["fetched_at"], FETCHED_AT_FORMAT).replace(tzinfo=UTC)
    return {**parts, "fetched_at": at.isoformat()}


@task(name="land-football-response", cache_policy=NO_CACHE)
def land_response(lake: Lake, fetched: Fetched) -> str:
    """Validate one response and write it to the raw lake (or quarantine it and fail)."""
    key = land(lake, fetched)
    get_run_logger().info("Landed %s %s at %s", fetched.competition, fetched.endpoint, key)
    return key
