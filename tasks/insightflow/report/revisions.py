"""The report's Revisions section: which published months DOSM revised since the previous report, and by how much.

Read from ``fct_retail_sales_vintages`` (every published value with when the pipeline first saw it)
with SQL that runs unchanged on DuckDB and Athena. "Since the previous report" means values first
seen after the previous report was published (its time is in the report's ``_state.json``); the
first report lists every revision on record.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from tasks.insightflow.report.findings import Query

REVISIONS_SQL = """
select vintages.month_start_date, vintages.msic_group_code, groups.msic_group_description,
       vintages.previous_sales_myr_million, vintages.sales_myr_million, vintages.sales_revision_pct,
       vintages.previous_volume_index, vintages.volume_index, vintages.seen_at
from fct_retail_sales_vintages as vintages
left join dim_msic_group as groups on groups.msic_group_code = vintages.msic_group_code
where vintages.vintage_number > 1{since}
"""
HEADLINE_MONTHS = 6  # the headline's latest months shown with every value they were published with
LISTED = 15  # revisions listed, largest first


@dataclass(frozen=True)
class Revision:
    """One published value that replaced an earlier one."""

    month: date
    group_code: str | None
    group: str
    was: float
    now: float
    pct: float
    seen_at: datetime


@dataclass(frozen=True)
class Revisions:
    """What the section shows."""

    since: str | None  # the previous report's time, or None for the first report
    changes: list[Revision]  # largest revision first
    headline: dict[date, list[tuple[float, datetime]]]  # month -> (sales, seen_at) per vintage

    @property
    def months(self) -> int:
        return len({r.month for r in self.changes})


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) and not isinstance(value, datetime) else date.fromisoformat(str(value)[:10])


def _as_datetime(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _month_back(month: date, months: int) -> date:
    index = month.year * 12 + month.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


def read_revisions(query: Query, since: str | None) -> Revisions:
    """Revisions first seen after ``since`` (``YYYY-MM-DD HH:MM:SS`` UTC; None: all), and the headline's history."""
    where = f"\n  and vintages.seen_at > timestamp '{since}'" if since else ""
    rows = query(REVISIONS_SQL.format(since=where))
    changes = [
        Revision(
            month=_as_date(r["month_start_date"]),
            group_code=r["msic_group_code"],
            group=r["msic_group_description"]
            or ("Headline: all wholesale & retail trade" if not r["msic_group_code"] else ""),
            was=float(r["previous_sales_myr_million"]),
            now=float(r["sales_myr_million"]),
            pct=float(r["sales_revision_pct"] or 0.0),
            seen_at=_as_datetime(r["seen_at"]),
        )
        for r in rows
    ]
    changes.sort(key=lambda c: (-abs(c.pct), c.month, c.group_code or ""))
    latest = query("select max(month_start_date) as m from fct_retail_sales_vintages where msic_group_code is null")
    headline: dict[date, list[tuple[float, datetime]]] = {}
    if latest and latest[0]["m"] is not None:
        first = _month_back(_as_date(latest[0]["m"]), HEADLINE_MONTHS - 1)
        for r in query(
            "select month_start_date, sales_myr_million, seen_at from fct_retail_sales_vintages "
            f"where msic_group_code is null and month_start_date >= date '{first}' "
            "order by month_start_date, vintage_number"
        ):
            headline.setdefault(_as_date(r["month_start_date"]), []).append(
                (float(r["sales_myr_million"]), _as_datetime(r["seen_at"]))
            )
    return Revisions(since=since, changes=changes, headline=headline)


def _series(change: Revision) -> str:
    return f"{change.group_code} {change.group}" if change.group_code else change.group


def summary_sentence(rev: Revisions) -> str:
    when = f"since the previous report ({rev.since} UTC)" if rev.since else "on record (this is the first report)"
    if not rev.changes:
        return f"No published month was revised {when}."
    return (
        f"{len(rev.changes)} published value(s) in {rev.months} month(s) were revised {when}; "
        f"the largest: {_series(rev.changes[0])}, {rev.changes[0].month:%b %Y}, "
        f"RM {rev.changes[0].was:,.1f} mil → {rev.changes[0].now:,.1f} mil ({rev.changes[0].pct:+.2f}%)."
    )


def _rows(rev: Revisions) -> list[list[str]]:
    return [
        [f"{c.month:%b %Y}", _series(c), f"{c.was:,.1f}", f"{c.now:,.1f}", f"{c.pct:+.2f}%", f"{c.seen_at:%Y-%m-%d}"]
        for c in rev.changes[:LISTED]
    ]


def _headline_rows(rev: Revisions) -> list[list[str]]:
    out = []
    for month, vintages in sorted(rev.headline.items(), reverse=True):
        first, latest = vintages[0][0], vintages[-1][0]
        path = " → ".join(f"{sales:,.1f} ({seen:%Y-%m-%d})" for sales, seen in vintages)
        change = f"{(latest - first) / first * 100:+.2f}%" if first else ""
        out.append([f"{month:%b %Y}", str(len(vintages) - 1), path, change])
    return out


_HEAD = ["Month", "Series", "Was (RM mil)", "Now (RM mil)", "Revision", "Seen"]
_HEADLINE_HEAD = ["Month", "Revisions", "Sales as published, RM mil (date first seen)", "First → latest"]


def _markdown_table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def _html_table(head: list[str], rows: list[list[str]]) -> str:
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def render_markdown(rev: Revisions) -> str:
    parts = ["## Revisions", summary_sentence(rev)]
    if rev.changes:
        parts.append(_markdown_table(_HEAD, _rows(rev)))
    if rev.headline:
        parts += [f"Headline sales of the latest {len(rev.headline)} months, every published value:"]
        parts.append(_markdown_table(_HEADLINE_HEAD, _headline_rows(rev)))
    return "\n\n".join(parts)


def render_html(rev: Revisions) -> str:
    out = f"<h2>Revisions</h2><p>{html.escape(summary_sentence(rev))}</p>"
    if rev.changes:
        out += _html_table(_HEAD, _rows(rev))
    if rev.headline:
        out += f"<p>Headline sales of the latest {len(rev.headline)} months, every published value:</p>"
        out += _html_table(_HEADLINE_HEAD, _headline_rows(rev))
    return out
