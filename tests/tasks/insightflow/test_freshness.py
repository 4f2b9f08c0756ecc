"""Freshness verdicts (tasks/insightflow/freshness.py) and the contract's agreement with dbt's sources.

Expected ages are worked out here from calendar dates, not from the contract's helpers.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date

import pytest
import yaml

from tasks.insightflow.contracts import DATASETS
from tasks.insightflow.freshness import assess, changes
from tests.support import REPO_ROOT

pytestmark = pytest.mark.unit

DBT_STAGING = REPO_ROOT / "dbt" / "insightflow" / "models" / "staging"


def manifest(newest: str | None, landed_at: str | None = None) -> dict:
    """A lake manifest as land() writes it; without ``landed_at`` the source-change check is not judged."""
    return {"newest_date": newest, "partitions": {}} | ({"landed_at": landed_at} if landed_at else {})


@pytest.mark.parametrize(
    ("name", "newest", "as_of", "age", "status"),
    [
        # August's data is over on 1 September: 75 days later (15 November) is the last fresh day.
        ("iowrt", "2025-08-01", date(2025, 11, 15), 75, "fresh"),
        ("iowrt", "2025-08-01", date(2025, 11, 16), 76, "stale"),
        ("iowrt_3d", "2025-12-01", date(2026, 2, 1), 31, "fresh"),  # December ends on 1 January
        # Weekly prices are judged from their effective date.
        ("fuelprice", "2025-10-30", date(2025, 11, 13), 14, "fresh"),
        ("fuelprice", "2025-10-30", date(2025, 11, 14), 15, "stale"),
    ],
)
def test_newest_period_age_is_counted_from_the_end_of_the_period(name, newest, as_of, age, status):
    verdict = assess(name, manifest(newest), as_of)
    assert (verdict.age_days, verdict.status) == (age, status)
    if status == "stale":
        assert verdict.stale_checks == ("newest period",) and f"{age} days" in verdict.reason


def test_a_source_unchanged_for_longer_than_its_cadence_allows_is_stale_even_with_recent_periods():
    # Prices newest 2025-11-12 (2 days old on the 14th), but the file last changed on 20 October.
    verdict = assess("fuelprice", manifest("2025-11-12", landed_at="2025-10-20T05:00:00+00:00"), date(2025, 11, 14))
    assert verdict.source_unchanged_days == 25 and verdict.status == "stale"
    assert verdict.stale_checks == ("source unchanged",)


def test_the_sample_is_fresh_on_its_own_as_of_date_but_stale_today():
    from tasks.insightflow.sample.data import FUEL_LAST_WEEK, LAST_MONTH, SAMPLE_AS_OF

    for name, newest in (("iowrt", LAST_MONTH), ("iowrt_3d", LAST_MONTH), ("fuelprice", FUEL_LAST_WEEK)):
        assert assess(name, manifest(newest.isoformat()), SAMPLE_AS_OF).status == "fresh", name
        assert assess(name, manifest(newest.isoformat()), date(2026, 12, 3)).status == "stale", name


def test_reference_data_and_empty_lakes_are_not_judged():
    assert assess("msic", manifest(None), date(2025, 11, 5)).status == "not tracked"
    assert assess("iowrt", None, date(2025, 11, 5)).status == "unknown"


def test_older_manifests_without_newest_date_fall_back_to_the_newest_partition():
    old = {"partitions": {"year=2025/month=07": {}, "year=2025/month=08": {}}}
    assert assess("iowrt", old, date(2025, 11, 5)).newest_period == "2025-08"


def test_a_stale_state_is_reported_once_then_again_only_when_it_changes_or_recovers():
    def state(verdicts):
        return {v.dataset: asdict(v) for v in verdicts}

    day1 = [assess("iowrt", manifest("2025-08-01"), date(2025, 11, 20))]
    stale, recovered = changes({}, day1)
    assert [v.dataset for v in stale] == ["iowrt"] and recovered == []
    day2 = [assess("iowrt", manifest("2025-08-01"), date(2025, 11, 21))]  # a day older, same state
    assert changes(state(day1), day2) == ([], [])
    # September arrives but is already too old: a different stale state.
    day3 = [assess("iowrt", manifest("2025-09-01"), date(2025, 12, 20))]
    assert [v.newest_period for v in changes(state(day2), day3)[0]] == ["2025-09"]
    day4 = [assess("iowrt", manifest("2025-10-01"), date(2025, 12, 21))]
    assert changes(state(day3), day4) == ([], day4)


def _dbt_warn_after_days() -> dict[str, int]:
    found = {}
    for path in DBT_STAGING.glob("*/_*__sources.yml"):
        for source in yaml.safe_load(path.read_text())["sources"]:
            default = (source.get("config") or {}).get("freshness")
            for table in source["tables"]:
                config = table.get("config") or {}
                freshness = config.get("freshness", default)  # an explicit null switches it off
                if freshness:
                    warn = freshness["warn_after"]
                    assert warn["period"] == "day", (table["name"], warn)
                    found[table["name"]] = warn["count"]
    return found


def test_dbt_source_freshness_warns_at_the_lag_the_contract_allows():
    contract = {name: d.freshness.allowed_lag.days for name, d in DATASETS.items() if d.freshness}
    assert _dbt_warn_after_days() == contract
