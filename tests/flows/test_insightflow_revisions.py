"""A release that revises published months, through the whole flow (fixture server → lake → dbt → report).

The fixture server's revision mode serves release 1 of the sample: one new month, and the three
months before it revised for some groups. Every expected number here comes from the two payloads the
fixture serves, read with pyarrow: never from the product's models or functions.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks.insightflow.sample.server import sample_server
from tests.support import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_server")]

DOCS = REPO_ROOT / "docs" / "revisions.md"


def published_values(release: int) -> dict[tuple[date, str | None], tuple[float, float]]:
    """(month, group or None for the headline) -> (sales, volume) of the 'abs' rows the fixture serves."""
    payloads = sample_server(release=release).payloads
    values = {}
    for path, group_column in (("/iowrt/iowrt.parquet", None), ("/iowrt/iowrt_3d.parquet", "group")):
        for row in pq.read_table(pa.BufferReader(payloads[path])).to_pylist():
            if row["series"] == "abs":
                month = row["date"].date() if isinstance(row["date"], datetime) else row["date"]
                values[(month, row[group_column] if group_column else None)] = (row["sales"], row["volume"])
    return values


def lake_files(home: Path) -> dict[str, int]:
    lake = home / "lake"
    return {p.relative_to(lake).as_posix(): p.stat().st_mtime_ns for p in lake.rglob("*") if p.is_file()}


def query(home: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    """A home after release 0, then release 1 (revisions), then release 1 again (unchanged)."""
    from flows.insightflow import insightflow

    home = tmp_path_factory.mktemp("revisions-home")
    first = insightflow(settings={"sample": True, "home": str(home)}, return_state=True)
    assert first.is_completed(), first.message
    before = lake_files(home)
    between = datetime.now(UTC).replace(tzinfo=None)
    time.sleep(0.05)
    second = insightflow(settings={"sample": True, "sample_release": 1, "home": str(home)}, return_state=True)
    assert second.is_completed(), second.message
    after = lake_files(home)
    report = (home / "lake" / "reports" / "insightflow" / "latest.md").read_text()
    third = insightflow(settings={"sample": True, "sample_release": 1, "home": str(home)}, return_state=True)
    assert third.is_completed(), third.message
    return {
        "home": home,
        "between": between,
        "before": before,
        "after": after,
        "report": report,
        "second": second.result(),
        "third": third.result(),
        "unchanged_after": lake_files(home),
    }


@pytest.fixture(scope="module")
def expected():
    first, latest = published_values(0), published_values(1)
    revised = {key for key in first if key in latest and latest[key] != first[key]}
    return {"first": first, "latest": latest, "revised": revised}


def test_revisions_mart_lists_exactly_the_revised_pairs_with_first_and_latest_values(releases, expected):
    first, latest = expected["first"], expected["latest"]
    assert expected["revised"] and len(expected["revised"]) < len(first)  # some pairs revised, not all
    rows = query(
        releases["home"],
        "select month_start_date, msic_group_code, first_sales_myr_million, latest_sales_myr_million, revision_pct, "
        "first_volume_index, latest_volume_index, revision_count, last_revised_at from fct_retail_sales_revisions",
    )
    got = {(r[0], r[1]): r[2:] for r in rows}
    assert set(got) == set(latest)
    assert {key for key, row in got.items() if row[5] > 0} == expected["revised"]
    for key, (sales, volume) in latest.items():
        first_sales, first_volume = first.get(key, (sales, volume))  # the new month: first = latest
        row = got[key]
        assert (row[0], row[1], row[3], row[4]) == (first_sales, sales, first_volume, volume), key
        assert row[2] == pytest.approx(100 * (sales - first_sales) / first_sales, abs=1e-9), key
        assert (row[5] == 1) == (row[6] is not None) == (key in expected["revised"]), key


def _docs_as_of_query(moment: datetime) -> str:
    text = DOCS.read_text()
    sql = re.search(r"<!-- as-of-query -->\s*```sql\n(.*?)```", text, re.S)[1]
    assert sql.count("timestamp '2025-10-01 00:00:00'") == 2
    return sql.replace("timestamp '2025-10-01 00:00:00'", f"timestamp '{moment:%Y-%m-%d %H:%M:%S.%f}'")


def test_documented_as_of_query_returns_the_figures_known_before_the_revision(releases, expected):
    def as_of(moment: datetime) -> dict:
        rows = query(releases["home"], _docs_as_of_query(moment))
        return {(r[0], r[1]): (r[2], r[3]) for r in rows}

    groups = {phase: {k: v for k, v in expected[phase].items() if k[1] is not None} for phase in ("first", "latest")}
    assert as_of(releases["between"]) == groups["first"]
    assert as_of(datetime.now(UTC).replace(tzinfo=None)) == groups["latest"]
    assert as_of(datetime(2000, 1, 1)) == {}


def test_a_revising_release_writes_only_the_changed_partitions_and_their_versions(releases, expected):
    before, after = releases["before"], releases["after"]
    touched = {k for k in after if k not in before or after[k] != before[k]}
    # Reports, manifests and the run's own records (lineage/, state/) change on every changed run.
    touched = {
        k for k in touched if not k.startswith(("reports/", "lineage/", "state/")) and not k.endswith("_manifest.json")
    }
    months = sorted({month for month, _ in expected["latest"]} - {month for month, _ in expected["first"]})
    changed_months = sorted({month for month, _ in expected["revised"]} | set(months))
    partitions = {f"year={m.year}/month={m.month:02d}" for m in changed_months}
    for dataset in ("iowrt", "iowrt_3d"):
        raw = {k for k in touched if k.startswith(f"raw/{dataset}/")}
        history = {k for k in touched if k.startswith(f"history/{dataset}/")}
        assert {k.split("/", 2)[2].rsplit("/", 1)[0] for k in raw} == partitions
        assert {k.split("/", 2)[2].rsplit("/", 1)[0] for k in history} == partitions
        assert not any(k in before for k in history)  # versions are added, never rewritten
    assert {k.split("/")[1] for k in touched} == {"iowrt", "iowrt_3d"}
    assert releases["second"]["dbt"].endswith("nodes")


def test_an_unchanged_run_after_a_revision_lands_nothing_and_skips_dbt(releases):
    assert releases["third"]["dbt"] == "skipped"
    assert set(releases["third"]["datasets"].values()) == {"unchanged"}
    changed = {k for k, v in releases["unchanged_after"].items() if releases["after"].get(k) != v}
    assert all(k.startswith("reports/") for k in changed), changed


def test_report_shows_the_revisions_since_the_previous_report_largest_first(releases, expected):
    report = releases["report"]
    section = report.split("## Revisions", 1)[1].split("## Charts", 1)[0]
    first, latest = expected["first"], expected["latest"]
    pct = {key: 100 * (latest[key][0] - first[key][0]) / first[key][0] for key in expected["revised"]}
    assert f"{len(expected['revised'])} published value(s) in" in section
    assert "since the previous report" in section
    largest = max(pct, key=lambda key: abs(pct[key]))
    rows = [line for line in section.splitlines() if line.startswith("| ") and "%" in line and "Month" not in line]
    month, series = rows[0].split(" | ")[0].removeprefix("| "), rows[0].split(" | ")[1]
    assert month == f"{largest[0]:%b %Y}" and series.startswith(largest[1] or "Headline")
    assert f"{pct[largest]:+.2f}%" in rows[0]
    # the headline's latest months, each with every value it was published with
    headline_revised = sorted(month for month, group in expected["revised"] if group is None)
    for month in headline_revised:
        line = next(r for r in section.splitlines() if r.startswith(f"| {month:%b %Y} | 1 |"))
        assert f"{first[(month, None)][0]:,.1f}" in line and f"{latest[(month, None)][0]:,.1f}" in line
