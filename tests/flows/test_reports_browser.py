"""The reports as a person sees them: both flows run from the command line against a real Prefect server with
its UI, then headless Chromium opens each artifact page and checks that every chart image decoded and the
findings text is on the page. Screenshots stay in the test's tmp dir.

The session server in tests/conftest.py runs without the UI, so this module starts its own. Chromium is
Debian's package (``.ci/install-chromium``), driven by Playwright's Python package through
``executable_path``: Playwright's own browser download cannot work offline.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest

from tasks.core.prefect_server import local_prefect_server
from tests.support import REPO_ROOT
from tests.tasks.insightflow.report.test_publish import PNG_URI

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
CHART_SELECTOR = 'img[src^="data:image/png"]'

pytestmark = [pytest.mark.browser, pytest.mark.e2e]
# Not imported from tests/conftest.py: importing it a second time, as tests.conftest, re-runs its module
# code, which picks a new port and points PREFECT_API_URL at it for the rest of the session.


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory) -> Iterator[str]:
    """A Prefect server with its UI on a free port; yields the base URL (no /api)."""
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing: run .ci/install-chromium (Debian's chromium package)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with local_prefect_server(tmp_path_factory.mktemp("ui-server"), ui=True) as server:
        deadline = time.monotonic() + 60
        while httpx.get(server.ui_url, timeout=5).status_code != 200:  # the UI's static files, after the API
            assert time.monotonic() < deadline, "the Prefect UI did not answer within 60 s"
            time.sleep(0.5)
        yield server.ui_url


def run_cli(script: str, args: list[str], api_url: str) -> str:
    """Run a flow the way the README says, against ``api_url``; returns its stdout."""
    env = {**os.environ, "PREFECT_API_URL": api_url}
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "flows" / script), *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"{script} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def newest_artifact(url: str, key: str) -> dict:
    response = httpx.post(
        f"{url}/api/artifacts/filter",
        timeout=30,
        json={"artifacts": {"key": {"any_": [key]}}, "sort": "CREATED_DESC", "limit": 1},
    )
    response.raise_for_status()
    return response.json()[0]


@pytest.fixture(scope="module")
def published(ui_server, tmp_path_factory) -> dict:
    """Both flows on the sample; football twice around an earlier matchday so its artifact has points charts."""
    home = tmp_path_factory.mktemp("home")
    api = f"{ui_server}/api"
    out = run_cli("insightflow.py", ["--sample", "--fast-dbt", "--home", str(home)], api)
    # Two ticks of the season (after matchday 9, then all played): two snapshots, so a points chart.
    run_cli(
        "football.py", ["--sample", "--sample-matchday", "9", "--competitions", "PL", "BL1", "--home", str(home)], api
    )
    football_out = run_cli("football.py", ["--sample", "--competitions", "PL", "BL1", "--home", str(home)], api)
    return {
        "home": home,
        "stdout": out,
        "football_stdout": football_out,
        "report": newest_artifact(ui_server, "insightflow-report"),
        "freshness": newest_artifact(ui_server, "insightflow-freshness"),
        "standings": newest_artifact(ui_server, "football-standings"),
        "insightflow-lineage": newest_artifact(ui_server, "insightflow-lineage"),
        "football-lineage": newest_artifact(ui_server, "football-lineage"),
    }


def table_rows(url: str, artifact: dict, screenshot: Path, waits_for: str) -> list[list[str]]:
    """Open a table artifact's page in Chromium once ``waits_for`` is on it; returns each row's cell texts."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1400})
            page.goto(f"{url}/artifacts/artifact/{artifact['id']}", wait_until="networkidle", timeout=90_000)
            page.get_by_text(waits_for).first.wait_for(timeout=60_000)
            rows = page.eval_on_selector_all(
                "tr", "rows => rows.map(r => [...r.querySelectorAll('td, th')].map(c => c.innerText.trim()))"
            )
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return rows


def look_at_artifact(url: str, artifact: dict, screenshot: Path) -> tuple[list[int], str]:
    """Open the artifact page in Chromium; returns each chart's naturalWidth and the page text."""
    from playwright.sync_api import sync_playwright

    charts = len(PNG_URI.findall(artifact["data"]))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 3400})
            page.goto(f"{url}/artifacts/artifact/{artifact['id']}", wait_until="networkidle", timeout=90_000)
            page.wait_for_function(
                f"n => document.querySelectorAll('{CHART_SELECTOR}').length >= n", arg=charts, timeout=60_000
            )
            page.wait_for_function(
                f"() => [...document.querySelectorAll('{CHART_SELECTOR}')].every(i => i.complete)", timeout=30_000
            )
            widths = page.eval_on_selector_all(CHART_SELECTOR, "images => images.map(i => i.naturalWidth)")
            text = page.inner_text("body")
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return widths, text


def test_insightflow_cli_ends_by_printing_where_the_html_report_is(published):
    last = published["stdout"].strip().splitlines()[-1]
    match = re.fullmatch(r"Report:\s+(\S+)", last)
    assert match, last
    page = Path(match.group(1))
    assert page == published["home"] / "lake" / "reports" / "insightflow" / "latest.html" and page.is_file()
    assert len(PNG_URI.findall(page.read_text())) == 3


def test_report_artifact_page_shows_every_chart_and_the_findings(ui_server, published, tmp_path):
    artifact = published["report"]
    widths, text = look_at_artifact(ui_server, artifact, tmp_path / "insightflow-report.png")
    assert len(widths) == 3 and all(w > 0 for w in widths), widths
    strongest = re.search(r"r = [+-]\d\.\d{3} over n = \d+ months", artifact["data"]).group(0)
    for shown in (
        "Findings",
        "Strongest links",
        "Weakest links",
        "Latest prices",
        "Caveats",
        "Correlation is not causation",
        strongest,
    ):
        assert shown in text, shown


def test_standings_artifact_page_shows_tables_scorers_and_points_charts(ui_server, published, tmp_path):
    artifact = published["standings"]
    assert "2 points charts" in published["football_stdout"]
    widths, text = look_at_artifact(ui_server, artifact, tmp_path / "football-standings.png")
    assert len(widths) == 2 and all(w > 0 for w in widths), widths
    leaders = re.findall(r"^\| 1 \| ([^|]+) \|", artifact["data"], re.M)
    assert len(leaders) >= 2
    for shown in ("Premier League (PL)", "Bundesliga (BL1)", "Top scorers", *[name.strip() for name in leaders]):
        assert shown in text, shown


def look_at_diagram(url: str, artifact: dict, screenshot: Path) -> tuple[int, str]:
    """Open the artifact in the V2 UI (the one that draws mermaid); returns the SVG's node count and text."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 2400})
            page.goto(f"{url}/v2/artifacts/artifact/{artifact['id']}", wait_until="networkidle", timeout=90_000)
            page.wait_for_selector("svg g.node", timeout=60_000)
            nodes = page.eval_on_selector_all("svg g.node", "nodes => nodes.length")
            text = page.eval_on_selector("svg:has(g.node)", "svg => svg.textContent")
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return nodes, text


@pytest.mark.parametrize(
    ("key", "shown"),
    [
        (
            "insightflow-lineage",
            [
                "raw/iowrt",
                "raw/fuelprice",
                "stg_fuelprice",
                "int_fuelprice_monthly",
                "fct_fuel_retail_correlation",
                "insightflow report",
                "127.0.0.1/iowrt/iowrt.parquet",
                "materialized",
            ],
        ),
        (
            "football-lineage",
            [
                "raw/football/standings",
                "football_standings",
                "stg_football__standings",
                "fct_football_standings_current",
                "football standings",
                "127.0.0.1/v4/competitions/PL/standings",
            ],
        ),
    ],
)
def test_lineage_diagram_renders_as_an_svg_with_every_node_in_the_v2_ui(ui_server, published, tmp_path, key, shown):
    artifact = published[key]
    source = artifact["data"].split("```mermaid\n", 1)[1].split("```", 1)[0]
    boxes = re.findall(r'^\s+n\d+\["([^"]*)"\]$', source, re.M)  # one per asset key, from the markdown itself
    nodes, text = look_at_diagram(ui_server, artifact, tmp_path / f"{key}.png")
    assert nodes == len(boxes) > 10
    for label in shown:
        assert label in text, label
    for box in boxes:
        assert box.split("<br/>")[0] in text


def test_freshness_table_page_shows_each_dataset_newest_period_age_and_verdict(ui_server, published, tmp_path):
    import pyarrow.dataset as ds

    # The sample is judged against its own as-of date, which the console names; ages are worked out here
    # from the Parquet the run landed: a month is over on the first day of the next.
    as_of = date.fromisoformat(re.search(r"Freshness as of (\d{4}-\d{2}-\d{2})", published["stdout"]).group(1))
    lake = published["home"] / "lake" / "raw"
    rows = table_rows(ui_server, published["freshness"], tmp_path / "insightflow-freshness.png", waits_for="iowrt_3d")
    header, *cells = [r for r in rows if r]
    assert header[:6] == ["dataset", "check", "newest period", "age (days)", "allowed (days)", "status"], header
    by_check = {(r[0], r[1]): r for r in cells}
    for dataset in ("iowrt", "iowrt_3d", "fuelprice"):
        newest = max(
            ds.dataset(lake / dataset, format="parquet", partitioning="hive").to_table().column("ymd_date").to_pylist()
        )
        if dataset == "fuelprice":  # weekly: judged from the effective date
            period, age = newest.isoformat(), (as_of - newest).days
        else:
            period, age = (
                f"{newest:%Y-%m}",
                (as_of - date(newest.year + newest.month // 12, newest.month % 12 + 1, 1)).days,
            )
        row = by_check[(dataset, "contract")]
        assert row[2:4] == [period, str(age)] and row[5] == "fresh", row
        dbt_row = by_check[(dataset, "dbt source")]
        assert dbt_row[3] == str(age) and dbt_row[5] == "fresh", dbt_row
    assert by_check[("msic", "contract")][5] == "not tracked"
