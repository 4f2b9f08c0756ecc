"""The InsightFlow datasets and their data contracts.

A contract lists the columns a dataset must carry, the lake name and type of each, and how the
published file's types are coerced (dates arrive as date32, timestamps or 'YYYY-MM-DD' strings;
numbers sometimes as strings). Columns the publisher adds later are carried into the lake as they
are: data.gov.my's fuelprice gained ron95_skps, ron95_budi95, diesel_budi and diesel_skds in 2025.
Lake column names are safe on Athena/Hive: ``date`` becomes ``ymd_date``, ``group`` ``group_code``,
``class`` ``class_code``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

Kind = Literal["string", "date", "float", "int"]


@dataclass(frozen=True)
class Field:
    """One column of a contract: its name in the published file, in the lake, and its type."""

    source: str
    name: str
    kind: Kind
    required: bool = True
    nullable: bool = True


@dataclass(frozen=True)
class Freshness:
    """How often the publisher releases a dataset and how late its newest period may be.

    ``allowed_lag`` is measured from the end of the newest period in the data (the last day of a
    monthly series' newest month; a weekly series' newest effective date) to the day it is judged on.
    ``unchanged_after`` is how long the published file may stay byte-identical before the source
    itself counts as stale (the publisher stopped publishing, or a mirror stopped syncing).
    The dbt sources (dbt/insightflow/models/staging/*/_*__sources.yml) declare the same lags as
    ``warn_after``; tests/tasks/insightflow/test_freshness.py keeps the two in step.
    """

    cadence: Literal["monthly", "weekly"]
    allowed_lag: timedelta
    unchanged_after: timedelta

    def period_end(self, newest: date) -> date:
        """The day after which ``newest``'s period is over (monthly periods are dated by their first day)."""
        if self.cadence == "monthly":
            return date(newest.year + (newest.month == 12), newest.month % 12 + 1, 1)
        return newest


@dataclass(frozen=True)
class Dataset:
    """A published dataset: where it lives, its contract, and how it is partitioned in the lake."""

    name: str
    host: Literal["dosm", "datagovmy"]
    path: str
    fields: tuple[Field, ...]
    partition_by_date: bool = True
    description: str = ""
    freshness: Freshness | None = None

    @property
    def date_field(self) -> Field | None:
        return next((f for f in self.fields if f.kind == "date"), None) if self.partition_by_date else None

    @property
    def required(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.required)

    def field_by_source(self, source: str) -> Field | None:
        return next((f for f in self.fields if f.source == source), None)


def _measure(source: str, required: bool = True) -> Field:
    return Field(source, source, "float", required=required)


# Columns that are SQL keywords on Athena/Hive (or awkward elsewhere) get a suffix in the lake.
RESERVED_RENAMES = {"date": "ymd_date", "group": "group_code", "class": "class_code"}

# DOSM publishes a month about six weeks after it ends, so the newest month is normally 6 to 10 weeks
# past its end: 75 days means the next release is overdue. The file changes at least monthly (new
# month, revisions of the last ones): 45 unchanged days is one release missed.
RETAIL_TRADE_FRESHNESS = Freshness("monthly", allowed_lag=timedelta(days=75), unchanged_after=timedelta(days=45))

IOWRT = Dataset(
    name="iowrt",
    host="dosm",
    path="/iowrt/iowrt.parquet",
    description="Wholesale & retail trade headline: monthly sales (RM mil) and volume index, by series.",
    freshness=RETAIL_TRADE_FRESHNESS,
    fields=(
        Field("series", "series", "string", nullable=False),
        Field("date", "ymd_date", "date", nullable=False),
        _measure("sales"),
        _measure("volume"),
        _measure("volume_sa", required=False),
    ),
)

IOWRT_3D = Dataset(
    name="iowrt_3d",
    host="dosm",
    path="/iowrt/iowrt_3d.parquet",
    description="Wholesale & retail trade by 3-digit MSIC group: monthly sales and volume, by series.",
    freshness=RETAIL_TRADE_FRESHNESS,
    fields=(
        Field("series", "series", "string", nullable=False),
        Field("date", "ymd_date", "date", nullable=False),
        Field("group", "group_code", "string", nullable=False),
        _measure("sales"),
        _measure("volume"),
    ),
)

FUELPRICE = Dataset(
    name="fuelprice",
    host="datagovmy",
    path="/commodities/fuelprice.parquet",
    description="Weekly retail fuel prices (RM/litre), levels and weekly changes.",
    # Announced every week (Wednesday evening, effective Thursday): two missed announcements is stale.
    freshness=Freshness("weekly", allowed_lag=timedelta(days=14), unchanged_after=timedelta(days=14)),
    fields=(
        Field("series_type", "series_type", "string", nullable=False),
        Field("date", "ymd_date", "date", nullable=False),
        _measure("ron95"),
        _measure("ron97"),
        _measure("diesel"),
        _measure("diesel_eastmsia"),
        _measure("ron95_skps", required=False),
        _measure("ron95_budi95", required=False),
        _measure("diesel_budi", required=False),
        _measure("diesel_skds", required=False),
    ),
)

MSIC = Dataset(
    name="msic",
    host="dosm",
    path="/dictionaries/msic.parquet",
    partition_by_date=False,
    description="Malaysia Standard Industrial Classification dictionary (sections down to items).",
    fields=(
        Field("digits", "digits", "int", nullable=False),
        Field("section", "section", "string"),
        Field("division", "division", "string"),
        Field("group", "group_code", "string"),
        Field("class", "class_code", "string"),
        Field("item", "item", "string"),
        Field("desc_en", "desc_en", "string"),
        Field("exclude_en", "exclude_en", "string", required=False),
        Field("include_en", "include_en", "string", required=False),
        Field("desc_bm", "desc_bm", "string", required=False),
        Field("exclude_bm", "exclude_bm", "string", required=False),
        Field("include_bm", "include_bm", "string", required=False),
    ),
)

DATASETS: dict[str, Dataset] = {d.name: d for d in (IOWRT, IOWRT_3D, FUELPRICE, MSIC)}


def get_dataset(name: str) -> Dataset:
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}") from None


def manifest_key(dataset: str) -> str:
    """Where a dataset's manifest lives in the lake (written last by every landing)."""
    return f"raw/{dataset}/_manifest.json"


def partition_object_key(dataset: str, partition: str) -> str:
    """The one Parquet object of a partition (``year=YYYY/month=MM``; empty for unpartitioned data)."""
    return f"raw/{dataset}/{partition}/data.parquet" if partition else f"raw/{dataset}/data.parquet"
