"""The InsightFlow report on the sample: every number in its findings against values this test works out
from the raw sample tables with plain Python (never from the marts' SQL or the report's code), plus the
published artifact, the HTML page in the lake and the cheap republish on an unchanged re-run.
"""

from __future__ import annotations

import base64
import io
import re
import statistics
from collections import defaultdict
from datetime import date
from pathlib import Path

import httpx
import pytest

from tasks.insightflow.sample.data import SAMPLE_TABLES

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_server")]

PNG_URI = re.compile(r"data:image/png;base64,([A-Za-z0-9+/=]+)")
FUELS = ("ron95", "ron97", "diesel")


def _previous(month: date) -> date:
    return date(month.year - 1, 12, 1) if month.month == 1 else date(month.year, month.month - 1, 1)


def _pct(now: float, before: float) -> float:
    return (now / before - 1) * 100


def expected(warehouse: Path) -> dict:
    """Correlations, latest prices and year-on-year growth, worked out here.

    Sales levels and weekly prices come from the raw sample tables. The correlations use the monthly
    average prices as the mart states them (rounded to 2 dp: a raw mean ending in 5 in the third place
    rounds either way depending on float summation order), read with this test's own SQL.
    """
    import duckdb

    weekly: dict[date, list[dict]] = defaultdict(list)
    for row in SAMPLE_TABLES["fuelprice"]().to_pylist():
        if row["series_type"] == "level":
            weekly[row["date"].replace(day=1)].append(row)
    raw_means = {m: {f: statistics.fmean(w[f] for w in weeks) for f in FUELS} for m, weeks in weekly.items()}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "select month_start_date, avg_ron95_myr_per_litre, avg_ron97_myr_per_litre, "
            "avg_diesel_myr_per_litre from fct_headline_vs_fuel_monthly "
            "where avg_diesel_myr_per_litre is not null"
        ).fetchall()
    prices = {m: dict(zip(FUELS, values, strict=True)) for m, *values in rows}
    changes = {
        m: {f: _pct(p[f], prices[_previous(m)][f]) for f in FUELS} for m, p in prices.items() if _previous(m) in prices
    }

    sales: dict[str, dict[date, float]] = defaultdict(dict)
    for row in SAMPLE_TABLES["iowrt_3d"]().to_pylist():
        if row["series"] == "abs":
            sales[row["group"]][row["date"]] = row["sales"]
    correlations = {}
    for group, levels in sales.items():
        growth = {m: _pct(v, levels[_previous(m)]) for m, v in levels.items() if _previous(m) in levels}
        months = sorted(m for m in growth if m in changes)
        for fuel_name in ("diesel", "ron97"):
            r = statistics.correlation([growth[m] for m in months], [changes[m][fuel_name] for m in months])
            correlations[(group, fuel_name)] = (r, len(months))

    headline_months = {
        r["date"].date().replace(day=1) for r in SAMPLE_TABLES["iowrt"]().to_pylist() if r["series"] == "abs"
    }
    latest = max(headline_months & set(weekly))
    group_latest = max(m for levels in sales.values() for m in levels)
    year_before = group_latest.replace(year=group_latest.year - 1)
    yoy = {
        g: _pct(levels[group_latest], levels[year_before])
        for g, levels in sales.items()
        if group_latest in levels and year_before in levels
    }
    ron95 = [c["ron95"] for m, c in changes.items() if m in headline_months]
    return {
        "correlations": correlations,
        "latest": latest,
        "raw_means": raw_means[latest],
        "prices": prices[latest],
        "changes": changes[latest],
        "growth_month": group_latest,
        "yoy": yoy,
        "ron95_unchanged": sum(1 for c in ron95 if c == 0),
        "ron95_known": len(ron95),
        "diesel_may_jul_2024": (prices[date(2024, 5, 1)]["diesel"], prices[date(2024, 7, 1)]["diesel"]),
    }


def artifacts(key: str) -> list[dict]:
    """Artifacts with ``key`` from the API, newest first."""
    from prefect.settings import PREFECT_API_URL

    response = httpx.post(
        f"{PREFECT_API_URL.value()}/artifacts/filter",
        timeout=30,
        json={"artifacts": {"key": {"any_": [key]}}, "sort": "CREATED_DESC", "limit": 10},
    )
    response.raise_for_status()
    return response.json()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from flows.insightflow import insightflow

    home = tmp_path_factory.mktemp("home")
    state = insightflow(settings={"sample": True, "home": str(home), "dbt_node_tasks": False}, return_state=True)
    assert state.is_completed(), state.message
    return home, state.result(), artifacts("insightflow-report")[0]["data"]


def test_findings_equal_numbers_worked_out_from_the_raw_sample(run):
    from tasks.insightflow.report.findings import compute_findings, read_marts
    from tasks.insightflow.report.publish import duckdb_query

    home, _, markdown = run
    exp = expected(home / "warehouse.duckdb")
    found = compute_findings(read_marts(duckdb_query(home / "warehouse.duckdb")))

    assert {(c.group_code, c.fuel.lower()) for c in found.correlations} == set(exp["correlations"])
    for c in found.correlations:
        r, n = exp["correlations"][(c.group_code, c.fuel.lower())]
        assert c.r == pytest.approx(r, abs=5e-5) and c.n == n  # the mart rounds r to 4 dp
    ranked = sorted(exp["correlations"].items(), key=lambda item: -abs(item[1][0]))
    assert [(c.group_code, c.fuel.lower()) for c in found.strongest] == [k for k, _ in ranked[:3]]
    assert {(c.group_code, c.fuel.lower()) for c in found.weakest} == {k for k, _ in ranked[-3:]}
    for (group, fuel_name), (r, n) in ranked[:3] + ranked[-3:]:
        said = re.escape(f"{fuel_name} price change: r = {r:+.3f} over n = {n} months")
        assert re.search(rf"{group} [^\n]*{said}", markdown, re.I)

    assert found.latest_price_month == exp["latest"]
    for fuel_name, label in (("ron95", "RON95"), ("ron97", "RON97"), ("diesel", "diesel")):
        assert found.latest_prices[fuel_name] == pytest.approx(exp["raw_means"][fuel_name], abs=0.005 + 1e-9)
        assert found.latest_prices[fuel_name] == exp["prices"][fuel_name]
        assert found.latest_changes_pct[fuel_name] == pytest.approx(exp["changes"][fuel_name], abs=1e-9)
        assert f"{label} RM {exp['prices'][fuel_name]:.2f}/litre" in markdown
    assert f"Latest prices ({exp['latest']:%b %Y})" in markdown
    may, jul = exp["diesel_may_jul_2024"]
    assert f"RM {may:.2f}/litre in May 2024 and RM {jul:.2f}/litre in July 2024 ({_pct(jul, may):+.1f}%)" in markdown

    assert found.growth_month == exp["growth_month"]
    assert {g.group_code: g.growth_pct for g in found.growth} == pytest.approx(exp["yoy"], abs=1e-9)
    by_growth = sorted(exp["yoy"], key=lambda g: -exp["yoy"][g])
    assert [g.group_code for g in found.top] == by_growth[:5]
    assert [g.group_code for g in found.bottom] == by_growth[::-1][:5]
    for group in by_growth[:5] + by_growth[-5:]:
        growth = re.escape(f"{exp['yoy'][group]:+.1f}%")
        assert re.search(rf"{group} [^;\n]* {growth}", markdown)

    assert (found.ron95_unchanged_months, found.ron95_change_months) == (exp["ron95_unchanged"], exp["ron95_known"])
    assert f"did not move in {exp['ron95_unchanged']} of the {exp['ron95_known']} months" in markdown
    assert "Correlation is not causation" in markdown


def test_artifact_embeds_three_small_readable_pngs(run):
    from PIL import Image

    _, _, markdown = run
    images = [base64.b64decode(m) for m in PNG_URI.findall(markdown)]
    assert len(images) == 3
    for png in images:
        assert len(png) <= 150_000
        with Image.open(io.BytesIO(png)) as image:
            assert image.format == "PNG" and image.width >= 800 and image.height >= 400


def test_html_report_in_the_lake_is_standalone_and_linked(run):
    home, summary, markdown = run
    reports = home / "lake" / "reports" / "insightflow"
    latest = reports / "latest.html"
    assert summary["report"] == str(latest)
    dated = [p for p in reports.glob("*.html") if p.name != "latest.html"]
    assert len(dated) == 1 and dated[0].read_bytes() == latest.read_bytes()
    page = latest.read_text()
    assert len(PNG_URI.findall(page)) == 3
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page), "the page must open offline"
    for sentence in ("Strongest links", "Weakest links (r closest to 0)", "RON95 held fixed"):
        assert sentence in page and sentence in markdown
    link = artifacts("insightflow-report-html")[0]["data"]
    assert dated[0].as_uri() in link


def test_unchanged_rerun_republishes_the_same_report_within_a_second(run):
    from prefect.settings import PREFECT_API_URL

    from flows.insightflow import insightflow

    home, _, first_markdown = run
    before = sorted((home / "lake/reports/insightflow").glob("*.html"))
    state = insightflow(settings={"sample": True, "home": str(home), "dbt_node_tasks": False}, return_state=True)
    assert state.is_completed(), state.message
    assert state.result()["dbt"] == "skipped"
    republished = artifacts("insightflow-report")[0]["data"]
    note, _, rest = republished.partition("\n\n")
    assert note.startswith("> Republished by run") and rest == first_markdown
    assert sorted((home / "lake/reports/insightflow").glob("*.html")) == before

    task_runs = httpx.post(
        f"{PREFECT_API_URL.value()}/task_runs/filter",
        timeout=30,
        json={
            "flow_runs": {"id": {"any_": [str(state.state_details.flow_run_id)]}},
            "task_runs": {"name": {"like_": "insightflow-report"}},
        },
    ).json()
    assert len(task_runs) == 1
    assert task_runs[0]["total_run_time"] <= 1.0, task_runs[0]["total_run_time"]


def test_report_fingerprint_follows_the_landed_partitions(run, tmp_path):
    import shutil

    from tasks.core.lake import LocalLake
    from tasks.insightflow.contracts import manifest_key
    from tasks.insightflow.report.publish import report_fingerprint

    home, _, _ = run
    shutil.copytree(home / "lake" / "raw", tmp_path / "raw")
    lake = LocalLake(tmp_path)
    before = report_fingerprint(lake, "dev")
    assert report_fingerprint(lake, "dev") == before and report_fingerprint(lake, "prod") != before
    manifest = lake.read_json(manifest_key("fuelprice"))
    first = sorted(manifest["partitions"])[0]
    manifest["partitions"][first]["sha256"] = "0" * 64
    lake.write_json(manifest_key("fuelprice"), manifest)
    assert report_fingerprint(lake, "dev") != before


def test_report_names_the_warehouse_and_the_missing_mart_when_dbt_has_not_built_it(tmp_path):
    import duckdb

    from tasks.insightflow.report.publish import _read

    duckdb.connect(str(tmp_path / "warehouse.duckdb")).close()
    with pytest.raises(RuntimeError, match=r"reading the marts from DuckDB failed: .*fct_headline_vs_fuel_monthly"):
        _read("dev", str(tmp_path), "unused", "unused")
