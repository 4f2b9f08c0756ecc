"""What the InsightFlow marts say, as numbers: read the marts with portable SQL, then compute the findings.

Kept apart from rendering so tests can check every number against their own queries. The SQL runs
unchanged on DuckDB and Athena (Trino): plain selects, a join and ``date 'yyyy-mm-dd'`` literals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from tasks.core.query import Query

HEADLINE_SQL = """
select month_start_date, sales_myr_million, volume_index,
       avg_ron95_myr_per_litre, avg_ron97_myr_per_litre, avg_diesel_myr_per_litre,
       ron95_change_mom_pct, ron97_change_mom_pct, diesel_change_mom_pct, fuel_price_weeks
from fct_headline_vs_fuel_monthly
order by month_start_date
"""
CORRELATION_SQL = """
select msic_group_code, msic_group_description, months_compared,
       sales_growth_ron95_change_correlation, sales_growth_ron97_change_correlation,
       sales_growth_diesel_change_correlation
from fct_fuel_retail_correlation
order by msic_group_code
"""
LATEST_GROUP_MONTH_SQL = "select max(month_start_date) as month_start_date from fct_retail_sales_monthly"
GROUP_SALES_SQL = """
select fct.msic_group_code, dim.msic_group_description, fct.month_start_date, fct.sales_myr_million
from fct_retail_sales_monthly as fct
left join dim_msic_group as dim on dim.msic_group_code = fct.msic_group_code
where fct.month_start_date in (date '{latest}', date '{year_before}')
order by fct.msic_group_code, fct.month_start_date
"""
FUELS = {"diesel": "diesel", "ron97": "RON97"}
RANKED = 3  # strongest and weakest correlations named in the findings
HIGHLIGHT = 5  # top and bottom groups named for the latest month


@dataclass(frozen=True)
class MartData:
    """The rows the report needs, as read from the marts."""

    headline: list[dict[str, Any]]
    correlations: list[dict[str, Any]]
    group_sales: list[dict[str, Any]]
    latest_group_month: date | None


@dataclass(frozen=True)
class Correlation:
    group_code: str
    group: str
    fuel: str
    r: float
    n: int


@dataclass(frozen=True)
class GroupGrowth:
    group_code: str
    group: str
    sales_myr_million: float
    year_before_myr_million: float
    growth_pct: float


@dataclass
class Findings:
    """Every number the report states; the markdown and HTML only format these."""

    strongest: list[Correlation]
    weakest: list[Correlation]
    correlations: list[Correlation]
    groups_compared: int
    months_compared_min: int
    months_compared_max: int
    fuel_first_month: date | None
    fuel_last_month: date | None
    latest_price_month: date | None
    latest_prices: dict[str, float | None] = field(default_factory=dict)
    latest_changes_pct: dict[str, float | None] = field(default_factory=dict)
    diesel_may_2024: float | None = None
    diesel_jul_2024: float | None = None
    ron95_unchanged_months: int = 0
    ron95_change_months: int = 0
    ron95_null_groups: int = 0
    growth_month: date | None = None
    growth: list[GroupGrowth] = field(default_factory=list)

    @property
    def top(self) -> list[GroupGrowth]:
        return sorted(self.growth, key=lambda g: -g.growth_pct)[:HIGHLIGHT]

    @property
    def bottom(self) -> list[GroupGrowth]:
        return sorted(self.growth, key=lambda g: g.growth_pct)[:HIGHLIGHT]


def read_marts(query: Query) -> MartData:
    """Read the report's rows from the marts through ``query`` (one warehouse connection's ``sql -> rows``)."""
    headline = query(HEADLINE_SQL)
    correlations = query(CORRELATION_SQL)
    latest = (query(LATEST_GROUP_MONTH_SQL) or [{}])[0].get("month_start_date")
    group_sales: list[dict[str, Any]] = []
    if latest is not None:
        latest = _as_date(latest)
        year_before = latest.replace(year=latest.year - 1)
        group_sales = query(GROUP_SALES_SQL.format(latest=latest.isoformat(), year_before=year_before.isoformat()))
    if not headline or not correlations:
        raise ValueError(
            "the marts fct_headline_vs_fuel_monthly and fct_fuel_retail_correlation must not be empty; "
            "has dbt built them?"
        )
    return MartData(headline=headline, correlations=correlations, group_sales=group_sales, latest_group_month=latest)


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _correlations(rows: list[dict[str, Any]]) -> list[Correlation]:
    found = []
    for row in rows:
        for fuel, label in FUELS.items():
            r = row[f"sales_growth_{fuel}_change_correlation"]
            if r is not None:
                found.append(
                    Correlation(
                        group_code=str(row["msic_group_code"]),
                        group=row["msic_group_description"] or str(row["msic_group_code"]),
                        fuel=label,
                        r=float(r),
                        n=int(row["months_compared"]),
                    )
                )
    return found


def _growth(rows: list[dict[str, Any]], month: date | None) -> list[GroupGrowth]:
    if month is None:
        return []
    by_group: dict[str, dict[date, dict[str, Any]]] = {}
    for row in rows:
        by_group.setdefault(str(row["msic_group_code"]), {})[_as_date(row["month_start_date"])] = row
    year_before = month.replace(year=month.year - 1)
    growth = []
    for code, months in sorted(by_group.items()):
        now, then = months.get(month), months.get(year_before)
        if now is None or then is None or not then["sales_myr_million"]:
            continue  # a group without both months (new or discontinued series) has no year-on-year figure
        growth.append(
            GroupGrowth(
                group_code=code,
                group=now["msic_group_description"] or code,
                sales_myr_million=float(now["sales_myr_million"]),
                year_before_myr_million=float(then["sales_myr_million"]),
                growth_pct=(float(now["sales_myr_million"]) / float(then["sales_myr_million"]) - 1) * 100,
            )
        )
    return growth


def _price(rows: list[dict[str, Any]], month: date, column: str) -> float | None:
    match = [r[column] for r in rows if _as_date(r["month_start_date"]) == month]
    return float(match[0]) if match and match[0] is not None else None


def compute_findings(data: MartData) -> Findings:
    """Rank the correlations, take the latest prices, count RON95's flat months and rank year-on-year growth."""
    correlations = _correlations(data.correlations)
    by_strength = sorted(correlations, key=lambda c: (-abs(c.r), c.group_code, c.fuel))
    months = [int(r["months_compared"]) for r in data.correlations]
    priced = [r for r in data.headline if (r["fuel_price_weeks"] or 0) > 0]
    latest = priced[-1] if priced else None
    ron95_changes = [r["ron95_change_mom_pct"] for r in data.headline if r["ron95_change_mom_pct"] is not None]
    return Findings(
        strongest=by_strength[:RANKED],
        weakest=sorted(by_strength[-RANKED:], key=lambda c: (abs(c.r), c.group_code, c.fuel)),
        correlations=correlations,
        groups_compared=len(data.correlations),
        months_compared_min=min(months, default=0),
        months_compared_max=max(months, default=0),
        fuel_first_month=_as_date(priced[0]["month_start_date"]) if priced else None,
        fuel_last_month=_as_date(latest["month_start_date"]) if latest else None,
        latest_price_month=_as_date(latest["month_start_date"]) if latest else None,
        latest_prices={fuel: latest and latest[f"avg_{fuel}_myr_per_litre"] for fuel in ("ron95", "ron97", "diesel")},
        latest_changes_pct={fuel: latest and latest[f"{fuel}_change_mom_pct"] for fuel in ("ron95", "ron97", "diesel")},
        diesel_may_2024=_price(data.headline, date(2024, 5, 1), "avg_diesel_myr_per_litre"),
        diesel_jul_2024=_price(data.headline, date(2024, 7, 1), "avg_diesel_myr_per_litre"),
        ron95_unchanged_months=sum(1 for c in ron95_changes if c == 0),
        ron95_change_months=len(ron95_changes),
        ron95_null_groups=sum(1 for r in data.correlations if r["sales_growth_ron95_change_correlation"] is None),
        growth_month=data.latest_group_month,
        growth=_growth(data.group_sales, data.latest_group_month),
    )
