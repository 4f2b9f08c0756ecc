"""The report's standalone HTML page is its markdown rendered by markdown-it-py: the same words, tables and
charts as the Prefect artifact, on a page that opens offline. Checked by parsing the page's HTML and the
markdown's own lines, not by comparing against a stored copy."""

from __future__ import annotations

import base64
import re
from datetime import date, datetime
from html.parser import HTMLParser

import pytest

from tasks.insightflow.report.findings import Correlation, Findings
from tasks.insightflow.report.render import TITLE, render_html, render_markdown
from tasks.insightflow.report.revisions import Revision, Revisions
from tasks.insightflow.report.revisions import render_markdown as revisions_markdown

pytestmark = pytest.mark.unit

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))  # only carried, never decoded here
# A publisher's description with characters HTML and markdown both care about.
ODD_GROUP = "Retail sale of food & drinks <in kiosks>"


class Page(HTMLParser):
    """Text per element, table rows and images of one HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.text: list[str] = []
        self.rows: list[list[str]] = []
        self.images: list[dict[str, str | None]] = []
        self.tags: list[str] = []
        self.title = ""

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs))
            return
        self.stack.append(tag)
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self.rows[-1].append("")

    def handle_endtag(self, tag):
        if self.stack and self.stack[-1] == tag:
            self.stack.pop()

    def handle_data(self, data):
        if "title" in self.stack:
            self.title += data
        if "style" in self.stack or "title" in self.stack:
            return
        self.text.append(data)
        if self.stack and self.stack[-1] in ("td", "th"):
            self.rows[-1][-1] += data


def _findings() -> Findings:
    diesel = Correlation(group_code="473", group=ODD_GROUP, fuel="diesel", r=0.512, n=23)
    ron97 = Correlation(group_code="471", group="Retail sale in non-specialized stores", fuel="RON97", r=-0.044, n=22)
    return Findings(
        strongest=[diesel],
        weakest=[ron97],
        correlations=[diesel, ron97],
        groups_compared=2,
        months_compared_min=22,
        months_compared_max=23,
        fuel_first_month=date(2023, 1, 1),
        fuel_last_month=date(2024, 12, 1),
        latest_price_month=date(2024, 12, 1),
        latest_prices={"ron95": 2.05, "ron97": 3.35, "diesel": 2.10},
        latest_changes_pct={"ron95": 0.0, "ron97": -6.9, "diesel": None},
        ron95_unchanged_months=23,
        ron95_change_months=23,
    )


def _revisions() -> Revisions:
    seen = datetime(2025, 2, 3, 5, 0)
    return Revisions(
        since=None,
        changes=[Revision(date(2024, 11, 1), "473", ODD_GROUP, 1000.0, 1015.0, 1.5, seen)],
        headline={date(2024, 11, 1): [(146838.5, datetime(2025, 1, 6, 5, 0)), (147000.0, seen)]},
    )


@pytest.fixture(scope="module")
def report() -> tuple[str, Page]:
    charts = {"prices-vs-sales": ("Sales against prices, Jan 2023 = 100", PNG), "yoy": ("Growth by group", PNG)}
    header = {"run_name": "proud-fox", "target": "dev", "generated_at": "2026-12-06 23:00 UTC"}
    markdown = render_markdown(_findings(), charts, header, revisions_markdown(_revisions()))
    page = Page()
    page.feed(render_html(markdown))
    return markdown, page


def _markdown_tables(markdown: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in markdown.splitlines()
        if line.startswith("|") and not re.fullmatch(r"\|(-+\|)+", line)
    ]


def test_page_carries_the_markdowns_tables_cell_for_cell(report):
    markdown, page = report
    assert page.rows == _markdown_tables(markdown)
    assert ["Nov 2024", f"473 {ODD_GROUP}", "1,000.0", "1,015.0", "+1.50%", "2025-02-03"] in page.rows


def test_page_shows_every_sentence_of_the_markdown_without_markup(report):
    markdown, page = report
    text = " ".join("".join(page.text).split())
    assert f"473 {ODD_GROUP}, sales growth vs diesel price change: r = +0.512 over n = 23 months" in text
    assert "RON95 RM 2.05/litre (unchanged), RON97 RM 3.35/litre (-6.9% on the month), diesel RM 2.10/litre" in text
    assert "Run proud-fox · generated 2026-12-06 23:00 UTC · marts read from DuckDB (target dev)" in text
    for heading in ("Findings", "Caveats", "Revisions", "Charts"):
        assert f"## {heading}" in markdown and heading in text
    assert "**" not in text and "|---" not in text and "](" not in text


def test_publisher_text_stays_text(report):
    _, page = report
    assert not {"in", "kiosks", "script"} & set(page.tags)
    assert ODD_GROUP in "".join(page.text)


def test_page_is_standalone_with_the_charts_inline(report):
    _, page = report
    assert page.title == TITLE
    assert [i["alt"] for i in page.images] == ["Sales against prices, Jan 2023 = 100", "Growth by group"]
    for image in page.images:
        assert image["src"] == "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert {"style", "h1", "h2", "ul", "table", "strong", "em"} <= set(page.tags)
    assert "link" not in page.tags and "script" not in page.tags
