"""Change detection for football snapshots: land a response only when its meaningful content changed.

football-data.org answers most 5-minute ticks with the table it gave five minutes earlier. Each
competition and endpoint keeps a small manifest in the lake, next to its snapshots, rewritten
atomically (``Lake.write_json``: rename locally, one PUT on S3) on every tick:

``raw/football/<endpoint>/competition=<code>/_manifest.json``
    ``requests``: per request (path and query), the season it resolved to and the validators (ETag, Last-Modified)
    to send next time; ``seasons.<yyyy>.latest``: the last landed snapshot (key, content hash,
    matchday, first_seen_at, last_confirmed_at, confirmations); ``seasons.<yyyy>.synced.<target>``:
    the last snapshot that target's warehouse loaded and the dbt project fingerprint it was built with.

``raw/football/<endpoint>/competition=<code>/season=<yyyy>/_snapshots.json``
    the season's ledger: every distinct snapshot in order, written only when one lands (which also
    closes the previous one with its final last_confirmed_at). The raw loads and the warehouse table
    ``raw.football_snapshots`` are fed from it; neither file matches the snapshot key pattern.

Hash rule (``content_sha256``): sha256 of canonical JSON (sorted keys, no whitespace) of the
competition code, the ``season`` object (dates, currentMatchday, winner) and the ``standings`` tables
or ``scorers`` rows, with every key in ``VOLATILE_KEYS`` dropped at any depth. ``filters``, ``area``,
``count`` and the competition's name and emblem are left out: they echo the request or never change
a table. A 304 to the remembered validators counts as unchanged without a body to hash.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from tasks.core.assets import materialized, url_key
from tasks.core.http import conditional_headers
from tasks.core.lake import Lake
from tasks.football.api import Fetched, FootballApiError
from tasks.football.keys import lake_key
from tasks.football.land import RAW_PREFIX, land, parse, season_of

MANIFEST_FORMAT = 1
VOLATILE_KEYS = frozenset({"lastUpdated"})
CONTENT_SECTIONS = {"standings": ("season", "standings"), "scorers": ("season", "scorers")}


def manifest_key(competition: str, endpoint: str) -> str:
    return f"{RAW_PREFIX}/{endpoint}/competition={competition}/_manifest.json"


def ledger_key(competition: str, endpoint: str, season: str) -> str:
    return f"{RAW_PREFIX}/{endpoint}/competition={competition}/season={season}/_snapshots.json"


def _without_volatile(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_volatile(v) for k, v in value.items() if k not in VOLATILE_KEYS}
    if isinstance(value, list):
        return [_without_volatile(v) for v in value]
    return value


def content_sha256(document: dict[str, Any], endpoint: str) -> str:
    """The hash of what the models read from a response (see the module docstring for the rule)."""
    content = {
        "competition": (document.get("competition") or {}).get("code"),
        **{section: document.get(section) for section in CONTENT_SECTIONS[endpoint]},
    }
    canonical = json.dumps(_without_volatile(content), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def read_manifest(lake: Lake, competition: str, endpoint: str) -> dict[str, Any]:
    """The competition/endpoint manifest, or an empty one before the first landing."""
    return lake.read_json(manifest_key(competition, endpoint)) or {
        "format": MANIFEST_FORMAT,
        "competition": competition,
        "endpoint": endpoint,
        "requests": {},
        "seasons": {},
    }


def read_ledger(lake: Lake, competition: str, endpoint: str, season: str) -> list[dict[str, Any]]:
    return (lake.read_json(ledger_key(competition, endpoint, season)) or {}).get("snapshots") or []


def request_id(url: str) -> str:
    """A request's path and query: the same request whatever host serves it (API, mirror, sample server)."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def validators_for(manifest: dict[str, Any], url: str) -> dict[str, str]:
    """Conditional request headers for ``url``: only if a snapshot of the season it answered with is landed."""
    request = manifest["requests"].get(request_id(url)) or {}
    if not (manifest["seasons"].get(request.get("season") or "") or {}).get("latest"):
        return {}
    return conditional_headers(request)


@dataclass
class Outcome:
    """What one tick did with one competition/endpoint: landed a snapshot, or confirmed the last one."""

    competition: str
    endpoint: str
    season: str
    status: str  # "landed" | "not_modified" (HTTP 304) | "unchanged" (same content hash)
    key: str
    content_sha256: str
    matchday: int | None
    first_seen_at: str
    last_confirmed_at: str
    bytes: int = 0
    manifest: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def landed(self) -> bool:
        return self.status == "landed"

    def row(self) -> dict[str, Any]:
        return {
            "competition": self.competition,
            "endpoint": self.endpoint,
            "season": self.season,
            "status": self.status,
            "snapshot": self.key,
            "matchday": self.matchday,
            "first_seen_at": self.first_seen_at,
            "last_confirmed_at": self.last_confirmed_at,
            "content_sha256": self.content_sha256[:12],
            "bytes": self.bytes,
        }


def _outcome(fetched: Fetched, season: str, status: str, snapshot: dict[str, Any], manifest: dict[str, Any]) -> Outcome:
    return Outcome(
        competition=fetched.competition,
        endpoint=fetched.endpoint,
        season=season,
        status=status,
        key=snapshot["key"],
        content_sha256=snapshot["content_sha256"],
        matchday=snapshot.get("matchday"),
        first_seen_at=snapshot["first_seen_at"],
        last_confirmed_at=snapshot["last_confirmed_at"],
        bytes=len(fetched.body),
        manifest=manifest,
    )


def _remember(manifest: dict[str, Any], fetched: Fetched, season: str) -> None:
    request = manifest["requests"].setdefault(request_id(fetched.url), {})
    request["season"] = season
    if fetched.etag or fetched.last_modified:
        request.update({"etag": fetched.etag, "last_modified": fetched.last_modified})


def _confirm(snapshot: dict[str, Any], at: str) -> None:
    snapshot["last_confirmed_at"] = max(snapshot["last_confirmed_at"], at)
    snapshot["confirmations"] = snapshot.get("confirmations", 0) + 1


def record(lake: Lake, fetched: Fetched, manifest: dict[str, Any] | None = None) -> Outcome:
    """Land ``fetched`` if its content differs from the last snapshot of its season, else confirm that one.

    Writes, in this order, the snapshot, the season ledger and the manifest; a crash in between leaves
    at worst a snapshot file no ledger names (never loaded) and is repaired by the next tick.
    Invalid bodies are quarantined and raise ``InvalidResponseError`` (``tasks.football.api.land``).
    """
    manifest = manifest if manifest is not None else read_manifest(lake, fetched.competition, fetched.endpoint)
    seen_at = _iso(fetched.fetched_at)
    if fetched.not_modified:
        season = (manifest["requests"].get(request_id(fetched.url)) or {}).get("season") or ""
        latest = (manifest["seasons"].get(season) or {}).get("latest")
        if latest is None:
            raise FootballApiError(
                fetched.competition,
                fetched.endpoint,
                "HTTP 304 Not Modified for a request this lake has no snapshot of",
                status=304,
            )
        _confirm(latest, seen_at)
        _remember(manifest, fetched, season)
        lake.write_json(manifest_key(fetched.competition, fetched.endpoint), manifest)
        return _outcome(fetched, season, "not_modified", latest, manifest)

    document, problem = parse(fetched)
    if problem is not None:
        land(lake, fetched)  # quarantines the body and raises InvalidResponseError naming the problem
    assert document is not None
    season = season_of(fetched, document)
    digest = content_sha256(document, fetched.endpoint)
    state = manifest["seasons"].setdefault(season, {})
    latest = state.get("latest")
    if latest is None or latest["content_sha256"] != digest:
        ledger = read_ledger(lake, fetched.competition, fetched.endpoint, season)
        if ledger and ledger[-1]["content_sha256"] == digest:
            latest = state["latest"] = ledger[-1]  # the ledger got this snapshot but the manifest write did not
        else:
            if ledger and latest is not None and ledger[-1]["key"] == latest["key"]:
                ledger[-1] = dict(latest)  # close the previous snapshot with its final confirmation time
            entry = {
                "key": land(lake, fetched),
                "content_sha256": digest,
                "matchday": (document.get("season") or {}).get("currentMatchday"),
                "first_seen_at": seen_at,
                "last_confirmed_at": seen_at,
                "confirmations": 0,
            }
            ledger.append(entry)
            lake.write_json(
                ledger_key(fetched.competition, fetched.endpoint, season),
                {
                    "format": MANIFEST_FORMAT,
                    "competition": fetched.competition,
                    "endpoint": fetched.endpoint,
                    "season": season,
                    "snapshots": ledger,
                },
            )
            state["latest"] = dict(entry)
            _remember(manifest, fetched, season)
            lake.write_json(manifest_key(fetched.competition, fetched.endpoint), manifest)
            return _outcome(fetched, season, "landed", entry, manifest)
    _confirm(latest, seen_at)
    _remember(manifest, fetched, season)
    lake.write_json(manifest_key(fetched.competition, fetched.endpoint), manifest)
    return _outcome(fetched, season, "unchanged", latest, manifest)


@dataclass
class SyncPlan:
    """What the warehouse needs after this tick's checks; ``idle`` means: do not even connect to it."""

    target: str
    keys: dict[str, list[str]] = field(default_factory=dict)  # endpoint -> snapshot keys to load
    snapshots: list[dict[str, Any]] = field(default_factory=list)  # rows for raw.football_snapshots
    marks: list[tuple[str, str, str, str]] = field(default_factory=list)  # (competition, endpoint, season, key)
    rescan: bool = False
    build: bool = False
    reasons: list[str] = field(default_factory=list)

    @property
    def idle(self) -> bool:
        return not (any(self.keys.values()) or self.rescan or self.build)


def snapshot_rows(
    ledger: list[dict[str, Any]], latest: dict[str, Any] | None, competition: str, endpoint: str, season: str
) -> list[dict[str, Any]]:
    """Ledger entries as table rows; the open (latest) one carries the manifest's live confirmation time."""
    rows = []
    for entry in ledger:
        live = latest if latest is not None and latest["key"] == entry["key"] else entry
        rows.append(
            {
                "endpoint": endpoint,
                "competition_code": competition,
                "season_year": int(season),
                "file_name": entry["key"],
                "content_sha256": entry["content_sha256"],
                "matchday": entry.get("matchday"),
                "first_seen_at": entry["first_seen_at"],
                "last_confirmed_at": live["last_confirmed_at"],
                "confirmations": live.get("confirmations", 0),
            }
        )
    return rows


def plan_sync(
    lake: Lake,
    outcomes: list[Outcome],
    target: str,
    dbt_project: str | None,
    *,
    rescan: bool = False,
    build: bool = False,
    reason: str = "",
) -> SyncPlan:
    """Snapshots landed but not yet loaded into ``target``, and whether dbt must run.

    Reads a season ledger only where the manifest says ``target`` is behind, so an unchanged tick
    costs no lake reads beyond the manifests the checks already hold.
    """
    plan = SyncPlan(target=target, rescan=rescan, build=build, reasons=[reason] if reason else [])
    for outcome in outcomes:
        for season, state in sorted(outcome.manifest.get("seasons", {}).items()):
            latest = state.get("latest")
            synced = (state.get("synced") or {}).get(target) or {}
            if latest is None or not season.isdigit():
                continue
            behind = synced.get("key") != latest["key"]
            stale = dbt_project is not None and synced.get("dbt_project") != dbt_project
            if stale and not behind:
                plan.build = True
                plan.reasons.append(
                    f"{outcome.competition} {outcome.endpoint} {season}: dbt project changed since its last build"
                )
            if not (behind or rescan):
                if stale:
                    plan.marks.append((outcome.competition, outcome.endpoint, season, latest["key"]))
                continue
            ledger = read_ledger(lake, outcome.competition, outcome.endpoint, season)
            keys = [entry["key"] for entry in ledger]
            start = keys.index(synced["key"]) + 1 if synced.get("key") in keys else 0
            plan.keys.setdefault(outcome.endpoint, []).extend(keys[start:])
            plan.snapshots.extend(snapshot_rows(ledger, latest, outcome.competition, outcome.endpoint, season))
            plan.marks.append((outcome.competition, outcome.endpoint, season, latest["key"]))
            if behind:
                plan.reasons.append(
                    f"{outcome.competition} {outcome.endpoint} {season}: {len(keys) - start} new snapshot(s)"
                )
    if any(plan.keys.values()):
        plan.build = True
    return plan


def mark_synced(lake: Lake, plan: SyncPlan, dbt_project: str | None) -> None:
    """Record in each manifest which snapshot ``plan.target`` now holds (after a successful load and build)."""
    at = _iso(datetime.now(UTC))
    by_manifest: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for competition, endpoint, season, key in plan.marks:
        by_manifest.setdefault((competition, endpoint), []).append((season, key))
    for (competition, endpoint), seasons in by_manifest.items():
        manifest = read_manifest(lake, competition, endpoint)
        for season, key in seasons:
            state = manifest["seasons"].setdefault(season, {})
            state.setdefault("synced", {})[plan.target] = {"key": key, "dbt_project": dbt_project, "at": at}
        lake.write_json(manifest_key(competition, endpoint), manifest)


@task(name="record-football-snapshot", cache_policy=NO_CACHE)
def record_snapshot(lake: Lake, fetched: Fetched, manifest: dict[str, Any]) -> Outcome:
    """Land the response if its content changed since the last snapshot, else record it as confirmed.

    A landed snapshot materializes the lake dataset ``<lake>/raw/football/<endpoint>`` from the endpoint's
    URL; an invalid body (quarantined) fails that materialization; a confirmed one emits nothing.
    """
    with materialized(
        lake_key(lake, fetched.endpoint),
        [url_key(fetched.url)],
        name=f"{RAW_PREFIX}/{fetched.endpoint}",
        layer="lake",
        by="football",
    ) as asset:
        outcome = record(lake, fetched, manifest)
        if not outcome.landed:
            asset.skip()
        asset.add(
            {
                "competition": outcome.competition,
                "season": outcome.season,
                "snapshot": outcome.key,
                "bytes": outcome.bytes,
            }
        )
    get_run_logger().info(
        "%s %s %s: %s (%s)", outcome.competition, outcome.endpoint, outcome.season, outcome.status, outcome.key
    )
    return outcome
