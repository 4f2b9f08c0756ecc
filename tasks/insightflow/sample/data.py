"""A deterministic offline sample of the four datasets, shaped like the published files.

Monthly trade indices from 2015 and weekly fuel prices from 2017 (with the June 2024 diesel split
and the 2025 BUDI95 columns), generated from a fixed seed so every run and test sees the same rows.
"""

from __future__ import annotations

import functools
import io
import math
import random
from datetime import date, timedelta

import pyarrow as pa
import pyarrow.parquet as pq

from tasks.insightflow.contracts import DATASETS

SEED = 20240101
FIRST_MONTH = date(2015, 1, 1)
LAST_MONTH = date(2025, 8, 1)
FUEL_FIRST_WEEK = date(2017, 3, 30)
FUEL_LAST_WEEK = date(2025, 10, 30)
BUDI95_START = date(2025, 9, 30)
DIESEL_SPLIT = date(2024, 6, 13)
# Each later sample release (the fixture's revision mode) publishes one new month and revises this many before it.
REVISED_MONTHS = 3
# The day the sample stands for: DOSM had published August 2025 (its newest month) and the fuel
# price for the week of 30 October was announced. Freshness checks judge the sample against this
# date, not today, so a first `--sample` run is fresh (tasks/insightflow/freshness.py).
SAMPLE_AS_OF = date(2025, 11, 5)

# 3-digit MSIC groups of Section G with their English titles and a rough share of trade sales.
MSIC_GROUPS: dict[str, tuple[str, float]] = {
    "451": ("Sale of motor vehicles", 0.070),
    "452": ("Maintenance and repair of motor vehicles", 0.012),
    "453": ("Sale of motor vehicle parts and accessories", 0.018),
    "454": ("Sale, maintenance and repair of motorcycles and related parts", 0.006),
    "461": ("Wholesale on a fee or contract basis", 0.020),
    "462": ("Wholesale of agricultural raw materials and live animals", 0.060),
    "463": ("Wholesale of food, beverages and tobacco", 0.090),
    "464": ("Wholesale of household goods", 0.080),
    "465": ("Wholesale of machinery, equipment and supplies", 0.070),
    "466": ("Other specialized wholesale", 0.160),
    "469": ("Non-specialized wholesale trade", 0.030),
    "471": ("Retail sale in non-specialized stores", 0.110),
    "472": ("Retail sale of food, beverages and tobacco in specialized stores", 0.030),
    "473": ("Retail sale of automotive fuel in specialized stores", 0.060),
    "474": ("Retail sale of information and communication equipment", 0.030),
    "475": ("Retail sale of other household equipment in specialized stores", 0.040),
    "476": ("Retail sale of cultural and recreation goods in specialized stores", 0.010),
    "477": ("Retail sale of other goods in specialized stores", 0.070),
    "478": ("Retail sale via stalls and markets", 0.004),
    "479": ("Retail trade not in stores, stalls or markets", 0.030),
}
DIVISIONS = {
    "45": "Wholesale and retail trade and repair of motor vehicles and motorcycles",
    "46": "Wholesale trade, except of motor vehicles and motorcycles",
    "47": "Retail trade, except of motor vehicles and motorcycles",
}


def _months(first: date = FIRST_MONTH, last: date = LAST_MONTH) -> list[date]:
    out, d = [], first
    while d <= last:
        out.append(d)
        d = date(d.year + (d.month == 12), d.month % 12 + 1, 1)
    return out


def _timestamps(days: list[date]) -> pa.Array:
    return pa.array([d.isoformat() for d in days]).cast(pa.timestamp("s")).cast(pa.timestamp("ns"))


def fuel_levels(rng: random.Random) -> list[tuple[date, float, float, float, float, float | None]]:
    """Weekly (date, ron95, ron97, diesel, diesel_eastmsia, ron95_budi95) levels, RM/litre."""
    rows = []
    ron95, ron97, diesel = 2.20, 2.50, 2.10
    week = FUEL_FIRST_WEEK
    while week <= FUEL_LAST_WEEK:
        if week < date(2021, 3, 3):
            # Before the 2021 price ceiling, prices followed world oil in small weekly steps.
            ron95 = min(2.30, max(1.25, ron95 + rng.choice([-0.05, -0.03, 0.0, 0.0, 0.03, 0.05])))
            diesel = min(2.35, max(1.35, diesel + rng.choice([-0.05, -0.02, 0.0, 0.0, 0.02, 0.05])))
        else:
            ron95, diesel = 2.05, 2.15
        ron97 = min(4.95, max(1.90, ron97 + rng.choice([-0.10, -0.05, 0.0, 0.05, 0.10])))
        peninsular = 3.35 if week >= DIESEL_SPLIT else diesel
        budi95 = 1.99 if week >= BUDI95_START else None
        rows.append((week, round(ron95, 2), round(ron97, 2), round(peninsular, 2), round(diesel, 2), budi95))
        week += timedelta(days=7)
    return rows


@functools.cache
def fuelprice_table() -> pa.Table:
    rng = random.Random(SEED + 3)
    levels = fuel_levels(rng)
    dates, series, cols = [], [], {k: [] for k in ("ron95", "ron97", "diesel", "diesel_eastmsia", "ron95_budi95")}
    previous = None
    for row in levels:
        values = dict(zip(cols, row[1:], strict=True))
        dates.append(row[0])
        series.append("level")
        for k in cols:
            cols[k].append(values[k])
        if previous is not None:
            dates.append(row[0])
            series.append("change_weekly")
            for k in cols:
                a, b = values[k], previous[k]
                cols[k].append(None if a is None or b is None else round(a - b, 2))
        previous = values
    return pa.table(
        {
            "series_type": series,
            "date": pa.array(dates, pa.date32()),
            **{k: pa.array(v, pa.float64()) for k, v in cols.items()},
        }
    )


def _monthly_fuel_index() -> dict[date, float]:
    """Monthly mean RON95 level, used to make fuel-sensitive groups move with the pump price."""
    sums: dict[date, list[float]] = {}
    for row in fuel_levels(random.Random(SEED + 3)):
        sums.setdefault(row[0].replace(day=1), []).append(row[1])
    return {m: sum(v) / len(v) for m, v in sums.items()}


def _series_rows(months: list[date], sales: list[float], volume: list[float]) -> list[tuple]:
    """'abs' rows plus growth_yoy / growth_mom (percent) where the base month exists."""
    rows = [("abs", m, s, v) for m, s, v in zip(months, sales, volume, strict=True)]
    for i, m in enumerate(months):
        if i >= 12:
            rows.append(
                (
                    "growth_yoy",
                    m,
                    round(100 * (sales[i] / sales[i - 12] - 1), 1),
                    round(100 * (volume[i] / volume[i - 12] - 1), 1),
                )
            )
        if i >= 1:
            rows.append(
                (
                    "growth_mom",
                    m,
                    round(100 * (sales[i] / sales[i - 1] - 1), 1),
                    round(100 * (volume[i] / volume[i - 1] - 1), 1),
                )
            )
    return rows


def release_month(release: int) -> date:
    """The newest month of sample release ``release`` (0 is the standard sample; each later one adds a month)."""
    index = LAST_MONTH.year * 12 + LAST_MONTH.month - 1 + release
    return date(index // 12, index % 12 + 1, 1)


def revised_in(release: int) -> list[date]:
    """The already-published months release ``release`` (>= 1) revises: the REVISED_MONTHS before its new month."""
    return [release_month(release - n) for n in range(REVISED_MONTHS, 0, -1)] if release >= 1 else []


def _trend(i: int, m: date) -> float:
    trend = (1.004) ** i * (1 + 0.04 * math.sin(2 * math.pi * (m.month - 3) / 12))
    if m.year == 2020 and 4 <= m.month <= 6:
        trend *= 0.72  # movement control order
    return trend


def _level(
    code: str, share: float, i: int, m: date, fuel: dict[date, float], rng: random.Random
) -> tuple[float, float]:
    trend = _trend(i, m)
    price = fuel.get(m, 2.05) / 2.05 if code in {"473", "451", "453"} else 1.0
    s = 125_000 * share * trend * price * (1 + rng.gauss(0, 0.015))
    return round(s, 1), round(100 * trend * (1 + rng.gauss(0, 0.01)), 1)


@functools.cache
def _first_levels(release: int) -> dict[str, tuple[list[date], list[float], list[float]]]:
    """Each group's months and levels as first published (before any revision), up to the release's month."""
    rng = random.Random(SEED + 2)
    base = _months()
    fuel = _monthly_fuel_index()
    out = {}
    for code, (_, share) in MSIC_GROUPS.items():
        levels = [_level(code, share, i, m, fuel, rng) for i, m in enumerate(base)]
        out[code] = (base, [s for s, _ in levels], [v for _, v in levels])
    for k in range(1, release + 1):
        m = release_month(k)
        for code, (_, share) in MSIC_GROUPS.items():
            # a seed per (group, month), so later releases never shift the values of earlier ones
            s, v = _level(code, share, len(base) + k - 1, m, fuel, random.Random(f"{SEED}-{code}-{m}"))
            months, sales, volume = out[code]
            out[code] = ([*months, m], [*sales, s], [*volume, v])
    return out


def revision_factors(release: int, month: date, code: str) -> tuple[float, float]:
    """The (sales, volume) factors release ``release`` applies to a group's month; (1, 1) leaves it as it was."""
    rng = random.Random(f"{SEED}-revision-{release}-{code}-{month}")
    if rng.random() < 0.4:
        return 1.0, 1.0
    return 1 + rng.uniform(-0.03, 0.03), 1 + rng.uniform(-0.02, 0.02)


@functools.cache
def iowrt_3d_table(release: int = 0) -> pa.Table:
    """iowrt_3d as published in ``release``: release 0 is the standard sample; release k adds k months and
    revises, in each of releases 1..k, the REVISED_MONTHS months before that release's new month."""
    series, dates, groups, sales_col, volume_col = [], [], [], [], []
    for code, (months, first_sales, first_volume) in _first_levels(release).items():
        sales, volume = list(first_sales), list(first_volume)
        for k in range(1, release + 1):
            for m in revised_in(k):
                i = months.index(m)
                f_sales, f_volume = revision_factors(k, m, code)
                sales[i], volume[i] = round(sales[i] * f_sales, 1), round(volume[i] * f_volume, 1)
        for row in _series_rows(months, sales, volume):
            series.append(row[0])
            dates.append(row[1])
            groups.append(code)
            sales_col.append(row[2])
            volume_col.append(row[3])
    return pa.table(
        {
            "series": series,
            "date": pa.array(dates, pa.date32()),
            "group": groups,
            "sales": pa.array(sales_col, pa.float64()),
            "volume": pa.array(volume_col, pa.float64()),
        }
    )


@functools.cache
def iowrt_table(release: int = 0) -> pa.Table:
    """The headline, summed (sales) and averaged (volume) from the groups of the same release."""
    detail = iowrt_3d_table(release).filter(pa.compute.equal(pa.compute.field("series"), "abs"))
    months = _months(FIRST_MONTH, release_month(release))
    by_month: dict[date, list[float]] = {}
    for d, s, v in zip(
        detail["date"].to_pylist(), detail["sales"].to_pylist(), detail["volume"].to_pylist(), strict=True
    ):
        acc = by_month.setdefault(d, [0.0, 0.0, 0])
        acc[0] += s
        acc[1] += v
        acc[2] += 1
    sales = [round(by_month[m][0], 1) for m in months]
    volume = [round(by_month[m][1] / by_month[m][2], 1) for m in months]
    rows = _series_rows(months, sales, volume)
    seasonal = {m: 1 + 0.03 * math.sin(2 * math.pi * (m.month - 3) / 12) for m in months}
    return pa.table(
        {
            "series": [r[0] for r in rows],
            "date": _timestamps([r[1] for r in rows]),
            "sales": pa.array([r[2] for r in rows], pa.float64()),
            "volume": pa.array([r[3] for r in rows], pa.float64()),
            "volume_sa": pa.array(
                [round(r[3] / seasonal[r[1]], 1) if r[0] == "abs" else r[3] for r in rows], pa.float64()
            ),
        }
    )


@functools.cache
def msic_table() -> pa.Table:
    rows: list[dict] = []

    def add(digits, section, division, group, class_, item, desc):
        rows.append(
            {
                "digits": digits,
                "section": section,
                "division": division,
                "group": group,
                "class": class_,
                "item": item,
                "desc_en": desc,
                "exclude_en": None,
                "include_en": None,
                "desc_bm": desc.upper(),
                "exclude_bm": None,
                "include_bm": None,
            }
        )

    add(1, "A", "-", "-", "-", "-", "Agriculture, forestry and fishing")
    add(2, "A", "01", "-", "-", "-", "Crop and animal production, hunting and related service activities")
    add(3, "A", "01", "011", "-", "-", "Growing of non-perennial crops")
    add(1, "G", "-", "-", "-", "-", "Wholesale and retail trade; repair of motor vehicles and motorcycles")
    for div, desc in DIVISIONS.items():
        add(2, "G", div, "-", "-", "-", desc)
    for code, (desc, _) in MSIC_GROUPS.items():
        add(3, "G", code[:2], code, "-", "-", desc)
        add(4, "G", code[:2], code, f"{code}0", "-", desc)
        add(5, "G", code[:2], code, f"{code}0", f"{code}01", f"{desc} (item)")
    add(1, "C", "-", "-", "-", "-", "Manufacturing")
    add(3, "C", "10", "101", "-", "-", "Processing and preserving of meat")
    return pa.Table.from_pylist(
        rows, schema=pa.schema([("digits", pa.int64())] + [(k, pa.string()) for k in rows[0] if k != "digits"])
    )


SAMPLE_TABLES = {"iowrt": iowrt_table, "iowrt_3d": iowrt_3d_table, "fuelprice": fuelprice_table, "msic": msic_table}


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


# The datasets a later sample release republishes (the others stay as in release 0).
RELEASED_TABLES = {"iowrt": iowrt_table, "iowrt_3d": iowrt_3d_table}


def sample_payloads() -> dict[str, bytes]:
    """Path on the real host → Parquet bytes, for every dataset."""
    return {DATASETS[name].path: parquet_bytes(build()) for name, build in SAMPLE_TABLES.items()}
