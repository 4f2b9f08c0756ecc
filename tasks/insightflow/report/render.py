"""The InsightFlow report's words and layout: findings as sentences, charts as PNG data URIs, in markdown and HTML.

The report is written once, as markdown (the Prefect artifact); the standalone HTML page is that same
markdown rendered by markdown-it-py (CommonMark plus tables, a maintained renderer that rich already
brings in), so the artifact and the page cannot disagree. The page inlines its CSS and images: it opens
offline.
"""

from __future__ import annotations

import html
from datetime import date
from typing import Any

from markdown_it import MarkdownIt

from tasks.core.charts import png_data_uri
from tasks.insightflow.report.charts import IndexSeries, correlation_chart, prices_vs_sales_chart, yoy_growth_chart
from tasks.insightflow.report.findings import Correlation, Findings, GroupGrowth, MartData

TITLE = "InsightFlow: does Malaysian retail trade move with the pump price?"
SOURCE_HEADLINE = (
    "DOSM wholesale & retail trade (iowrt), data.gov.my weekly fuel prices; mart fct_headline_vs_fuel_monthly"
)
SOURCE_CORRELATION = (
    "DOSM wholesale & retail trade by MSIC group (iowrt_3d), data.gov.my fuel prices; mart fct_fuel_retail_correlation"
)
SOURCE_GROWTH = "DOSM wholesale & retail trade by MSIC group (iowrt_3d); mart fct_retail_sales_monthly"
INDEXED = (
    ("Sales value (RM)", "sales", "sales_myr_million", False),
    ("Volume index", "volume", "volume_index", False),
    ("RON95 price", "ron95", "avg_ron95_myr_per_litre", True),
    ("RON97 price", "ron97", "avg_ron97_myr_per_litre", True),
    ("Diesel price (Peninsular)", "diesel", "avg_diesel_myr_per_litre", True),
)
LABEL_CHARS = 44


def _month(value: date | None) -> str:
    return f"{value:%b %Y}" if value else "n/a"


def _short(code: str, text: str) -> str:
    label = f"{code} {text}"
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1].rstrip() + "…"


def _corr(c: Correlation) -> str:
    return f"{c.group_code} {c.group}, sales growth vs {c.fuel} price change: r = {c.r:+.3f} over n = {c.n} months"


def _growth(g: GroupGrowth) -> str:
    return f"{g.group_code} {g.group} {g.growth_pct:+.1f}%"


def _price(found: Findings, fuel: str, label: str) -> str:
    price, change = found.latest_prices.get(fuel), found.latest_changes_pct.get(fuel)
    if price is None:
        return f"{label} n/a"
    moved = "unchanged" if change == 0 else "change n/a" if change is None else f"{change:+.1f}% on the month"
    return f"{label} RM {price:.2f}/litre ({moved})"


def findings_sentences(found: Findings) -> list[tuple[str, list[str]]]:
    """The findings as (label, sentences) pairs, every number taken from ``found``."""
    lines = [
        ("Strongest links", [_corr(c) for c in found.strongest]),
        ("Weakest links (r closest to 0)", [_corr(c) for c in found.weakest]),
    ]
    if found.latest_price_month:
        lines.append(
            (
                f"Latest prices ({_month(found.latest_price_month)})",
                [
                    ", ".join(
                        _price(found, f, n) for f, n in (("ron95", "RON95"), ("ron97", "RON97"), ("diesel", "diesel"))
                    )
                ],
            )
        )
    if found.diesel_may_2024 is not None and found.diesel_jul_2024 is not None:
        change = (found.diesel_jul_2024 / found.diesel_may_2024 - 1) * 100
        lines.append(
            (
                "June 2024 diesel change",
                [
                    f"Peninsular diesel averaged RM {found.diesel_may_2024:.2f}/litre in "
                    f"May 2024 and RM {found.diesel_jul_2024:.2f}/litre in July 2024 ({change:+.1f}%)"
                ],
            )
        )
    if found.growth:
        year_before = found.growth_month.replace(year=found.growth_month.year - 1)
        lines.append(
            (
                f"Year-on-year sales growth, {_month(found.growth_month)} vs {_month(year_before)}",
                [
                    "top five: " + "; ".join(_growth(g) for g in found.top),
                    "bottom five: " + "; ".join(_growth(g) for g in found.bottom),
                ],
            )
        )
    return lines


def _months_compared(found: Findings) -> str:
    low, high = found.months_compared_min, found.months_compared_max
    return f"{low} months" if low == high else f"{low} to {high} months"


def caveat_sentences(found: Findings) -> list[tuple[str, list[str]]]:
    """The caveats, with their numbers from ``found``."""
    return [
        (
            "RON95 held fixed",
            [
                f"its monthly average did not move in {found.ron95_unchanged_months} of the "
                f"{found.ron95_change_months} months with a known change, so a correlation with it says little"
                + (
                    f" (none at all for the {found.ron95_null_groups} groups where it never moved)"
                    if found.ron95_null_groups
                    else ""
                )
                + "; it is left out of the ranking"
            ],
        ),
        (
            "Correlation is not causation",
            [
                "these are same-month Pearson correlations of month-on-month changes, "
                "with no lags and no controls for seasonality, festive months or incomes"
            ],
        ),
        (
            "Months compared",
            [
                f"{_months_compared(found)} per group: every month with both a sales growth and a price "
                f"change (prices from {_month(found.fuel_first_month)} to {_month(found.fuel_last_month)}); prices are "
                "monthly averages of weekly announcements"
            ],
        ),
    ]


def _indexed(data: MartData) -> tuple[list[IndexSeries], date]:
    complete = [r for r in data.headline if all(r[col] is not None for _, _, col, _ in INDEXED)]
    if not complete:
        raise ValueError("fct_headline_vs_fuel_monthly has no month with sales, volume and all three prices")
    base = complete[0]
    series = [
        IndexSeries(label, key, [(r["month_start_date"], r[col] / base[col] * 100) for r in complete], dashed)
        for label, key, col, dashed in INDEXED
    ]
    return series, base["month_start_date"]


def render_charts(data: MartData, found: Findings) -> dict[str, tuple[str, bytes]]:
    """The three charts as name -> (alt text, PNG bytes)."""
    series, base = _indexed(data)
    by_group: dict[str, dict[str, Any]] = {}
    for c in found.correlations:
        row = by_group.setdefault(
            c.group_code, {"label": _short(c.group_code, c.group), "n": c.n, "diesel_r": None, "ron97_r": None}
        )
        row["diesel_r" if c.fuel == "diesel" else "ron97_r"] = c.r
    charts = {
        "prices-vs-sales": (
            f"Headline sales and volume against RON95, RON97 and diesel prices, {_month(base)} = 100",
            prices_vs_sales_chart(series, base, SOURCE_HEADLINE),
        ),
        "correlations": (
            "Correlation of monthly sales growth with diesel and RON97 price changes, by MSIC group",
            correlation_chart(list(by_group.values()), SOURCE_CORRELATION),
        ),
    }
    if found.growth and found.growth_month:
        rows = [{"label": _short(g.group_code, g.group), "growth_pct": g.growth_pct} for g in found.growth]
        charts["yoy-growth"] = (
            f"Year-on-year sales growth by MSIC group, {_month(found.growth_month)}",
            yoy_growth_chart(rows, found.growth_month, SOURCE_GROWTH),
        )
    return charts


def _subtitle(header: dict[str, str], found: Findings) -> str:
    engine = "DuckDB" if header["target"] == "dev" else "Athena"
    return (
        f"Run {header['run_name']} · generated {header['generated_at']} · marts read from {engine} "
        f"(target {header['target']}) · retail data to {_month(found.growth_month)}"
    )


def _markdown_list(pairs: list[tuple[str, list[str]]]) -> str:
    lines = []
    for label, sentences in pairs:
        if len(sentences) == 1:
            lines.append(f"- **{label}:** {sentences[0]}.")
        else:
            lines += [f"- **{label}:**"] + [f"    - {s}" for s in sentences]
    return "\n".join(lines)


def render_markdown(
    found: Findings, charts: dict[str, tuple[str, bytes]], header: dict[str, str], revisions: str = ""
) -> str:
    """The report as markdown; ``revisions`` is the Revisions section's markdown (tasks/insightflow/report/revisions.py)."""
    parts = [f"# {TITLE}", f"_{_subtitle(header, found)}_", "## Findings"]
    parts += [_markdown_list(findings_sentences(found)), "## Caveats", _markdown_list(caveat_sentences(found))]
    parts += [revisions] if revisions else []
    parts += ["## Charts"] + [f"![{alt}]({png_data_uri(png)})" for alt, png in charts.values()]
    return "\n\n".join(parts) + "\n"


# CommonMark with GFM tables (the Revisions section); raw HTML off, so a publisher's text with '<' in it
# stays text. Data URIs of PNG images pass markdown-it's link check (it allows data:image/png).
_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")
_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1040px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}"
    "img{max-width:100%;height:auto;border:1px solid #eee;margin:.5em 0 1.5em}h1+p{color:#666}"
    "li{margin:.3em 0}table{border-collapse:collapse;margin:.5em 0 1.5em}"
    "td,th{border-bottom:1px solid #ddd;padding:.2em .6em;text-align:left}"
)


def render_html(markdown: str) -> str:
    """The report's markdown (``render_markdown``) as a standalone page: the same text, CSS and charts inline."""
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(TITLE)}</title>'
        f"<style>{_CSS}</style></head><body>\n{_MARKDOWN.render(markdown)}</body></html>\n"
    )
