"""Is the data late? Each dataset's newest period and last source change, judged against its contract.

A run can succeed while the publisher has stopped publishing: the source answers 304 or the same bytes
for weeks, or keeps serving months that are long past. Nothing fails, so no failure alert fires. Here
each landed dataset is judged against ``Dataset.freshness`` (contracts.py): how old its newest period
is, and how long its source has been byte-identical. A stale dataset leaves the run Completed and emits
a Prefect event, ``insightflow.dataset.stale`` (resource ``insightflow.dataset.<name>``), which the
``insightflow-stale-data-alert`` automation (automations/) turns into a notification.

An alert is sent once per stale state, not once per run: the last verdict per dataset is kept in the
lake (``state/freshness.json``) and the event is emitted only when a dataset turns stale, or stays
stale with a different newest period or reason. Turning fresh again emits ``insightflow.dataset.fresh``.

Live and fixture sources are judged against today (UTC); the offline sample against its own as-of
date (``sample_data.SAMPLE_AS_OF``), so a first ``--sample`` run is fresh; backfills and tests pass
``as_of``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Literal

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event

from tasks.core.lake import Lake
from tasks.insightflow.contracts import DATASETS, manifest_key
from tasks.insightflow.warehouse.build import check_source_freshness

if TYPE_CHECKING:
    from tasks.insightflow.settings import Runtime

STATE_KEY = "state/freshness.json"
STALE_EVENT = "insightflow.dataset.stale"
FRESH_EVENT = "insightflow.dataset.fresh"
Status = Literal["fresh", "stale", "not tracked", "unknown"]


@dataclass(frozen=True)
class Verdict:
    """One dataset's freshness as the run saw it: a row of the freshness table."""

    dataset: str
    cadence: str
    newest_period: str
    age_days: int | None
    allowed_days: int | None
    source_unchanged_days: int | None
    unchanged_allowed_days: int | None
    status: Status
    reason: str = ""
    stale_checks: tuple[str, ...] = ()

    def row(self) -> dict:
        # "n/a", not "-": the Prefect UI renders a lone "-" in a table cell as a list bullet.
        return {
            "dataset": self.dataset,
            "check": "contract",
            "newest period": self.newest_period or "n/a",
            "age (days)": "n/a" if self.age_days is None else self.age_days,
            "allowed (days)": "n/a" if self.allowed_days is None else self.allowed_days,
            "status": self.status,
            "note": self.reason,
        }


def _newest(manifest: dict) -> date | None:
    """The newest date in the landed data: recorded by land(), else the newest partition's month."""
    if value := manifest.get("newest_date"):
        return date.fromisoformat(value)
    months = [p for p in manifest.get("partitions") or {} if p.startswith("year=")]
    if not months:
        return None
    year, month = max(months).replace("year=", "").replace("month=", "").split("/")
    return date(int(year), int(month), 1)


def assess(name: str, manifest: dict | None, as_of: date) -> Verdict:
    """Judge one dataset's landed manifest against its contract's freshness on ``as_of``."""
    rule = DATASETS[name].freshness
    if rule is None:
        return Verdict(name, "n/a", "", None, None, None, None, "not tracked", "reference data, no release cadence")
    newest = _newest(manifest or {})
    if newest is None:
        return Verdict(name, rule.cadence, "", None, rule.allowed_lag.days, None, None, "unknown", "nothing landed yet")
    period = newest.strftime("%Y-%m") if rule.cadence == "monthly" else newest.isoformat()
    age = (as_of - rule.period_end(newest)).days
    landed_at = (manifest or {}).get("landed_at")
    unchanged = max(0, (as_of - datetime.fromisoformat(landed_at).date()).days) if landed_at else None
    reasons, checks = [], []
    if age > rule.allowed_lag.days:
        checks.append("newest period")
        reasons.append(f"newest period {period} is {age} days past its end, allowed {rule.allowed_lag.days}")
    if unchanged is not None and unchanged > rule.unchanged_after.days:
        checks.append("source unchanged")
        reasons.append(f"source unchanged for {unchanged} days, allowed {rule.unchanged_after.days}")
    return Verdict(
        dataset=name,
        cadence=rule.cadence,
        newest_period=period,
        age_days=age,
        allowed_days=rule.allowed_lag.days,
        source_unchanged_days=unchanged,
        unchanged_allowed_days=rule.unchanged_after.days,
        status="stale" if reasons else "fresh",
        reason="; ".join(reasons),
        stale_checks=tuple(checks),
    )


def changes(previous: dict, verdicts: list[Verdict]) -> tuple[list[Verdict], list[Verdict]]:
    """(newly stale, fresh again) compared with the last recorded verdicts.

    A stale state is (newest period, which checks fail): the same state on the next day (older by a day)
    is not news; a new newest period that is still too old, or a second failing check, is.
    """
    stale, recovered = [], []
    for v in verdicts:
        before = previous.get(v.dataset) or {}
        was = (before.get("status"), before.get("newest_period"), list(before.get("stale_checks") or ()))
        if v.status == "stale" and was != ("stale", v.newest_period, list(v.stale_checks)):
            stale.append(v)
        elif v.status == "fresh" and before.get("status") == "stale":
            recovered.append(v)
    return stale, recovered


def _emit(event: str, verdict: Verdict, as_of: date, judged_against: str) -> None:
    emit_event(
        event=event,
        resource={
            "prefect.resource.id": f"insightflow.dataset.{verdict.dataset}",
            "prefect.resource.name": verdict.dataset,
            "insightflow.cadence": verdict.cadence,
        },
        payload={**asdict(verdict), "as_of": as_of.isoformat(), "judged_against": judged_against},
    )


@task(name="check-freshness", cache_policy=NO_CACHE)
def check_freshness(lake: Lake, datasets: list[str], as_of: date | None, judged_against: str) -> list[Verdict]:
    """Judge each dataset's freshness, alert (by event) on changes to stale, and record the verdicts."""
    logger = get_run_logger()
    as_of = as_of or datetime.now(UTC).date()
    verdicts = [assess(name, lake.read_json(manifest_key(name)), as_of) for name in datasets]
    previous = lake.read_json(STATE_KEY) or {}
    stale, recovered = changes(previous, verdicts)
    for verdict in stale:
        logger.warning("%s is stale (as of %s, %s): %s", verdict.dataset, as_of, judged_against, verdict.reason)
        _emit(STALE_EVENT, verdict, as_of, judged_against)
    for verdict in recovered:
        logger.info("%s is fresh again (newest period %s)", verdict.dataset, verdict.newest_period)
        _emit(FRESH_EVENT, verdict, as_of, judged_against)
    still = [v.dataset for v in verdicts if v.status == "stale" and v not in stale]
    if still:
        logger.info("still stale, already alerted: %s", ", ".join(still))
    recorded = {**previous, **{v.dataset: _state(v, previous.get(v.dataset), as_of) for v in verdicts}}
    if recorded != previous:  # an unchanged re-run writes nothing to the lake
        lake.write_json(STATE_KEY, recorded)
    return verdicts


def _state(verdict: Verdict, before: dict | None, as_of: date) -> dict:
    """What is kept per dataset: its state, and since when (the as-of day it was first seen in it)."""
    state = {
        "status": verdict.status,
        "newest_period": verdict.newest_period,
        "stale_checks": list(verdict.stale_checks),
    }
    same = before and all(before.get(k) == v for k, v in state.items())
    return state | {"since": before["since"] if same and "since" in before else as_of.isoformat()}


@dataclass
class Freshness:
    """A run's freshness table and the day it was judged against."""

    as_of: date
    judged_against: str
    rows: list[dict] = field(default_factory=list)


def judge_freshness(
    run: Runtime, datasets: list[str], dbt_summary: Any, given: date | None, sample_as_of: date | None
) -> Freshness:
    """The contract check over the landed ``datasets`` and, after a dbt build, dbt source freshness, in one table.

    Live sources are judged against today; the sample against its own as-of date (a first run is
    fresh); ``given`` overrides both (backfills, tests).
    """
    as_of = given or sample_as_of
    judged = "the given date" if given else "the sample's as-of date" if sample_as_of else "today"
    rows = [v.row() for v in check_freshness(run.lake, datasets, as_of, judged)] if datasets else []
    # With every dbt build; a skipped build (nothing landed) skips it too, keeping an unchanged re-run at
    # ~2 s instead of paying dbt's start (5-20 s cold here): the contract check, whose lags equal
    # dbt's warn_after (tests/tasks/insightflow/test_freshness.py), still judges every dataset on such a run.
    if dbt_summary is not None and not dbt_summary.skipped:
        rows += check_source_freshness(run.target, run.dbt_env, run.dbt_work_dir, as_of)
    return Freshness(as_of=as_of or datetime.now(UTC).date(), judged_against=judged, rows=rows)
