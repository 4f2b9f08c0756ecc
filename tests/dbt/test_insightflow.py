"""The dbt project on DuckDB against a small lake written here in the flow's layout.

Every expected number is worked out in Python from the rows written to the lake, not read back
from dbt. Real dbt (``dbtRunner``), real DuckDB; target/ and logs/ go to tmp.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import random
import shutil
import statistics
from collections import defaultdict
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dbt.adapters.duckdb.connections import DuckDBConnectionManager
from dbt.cli.main import dbtRunner, dbtRunnerResult
from tests.support import REPO_ROOT

# Each dbt invocation parses the project (seconds of CPU); generous bound for a loaded machine.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

DBT_DIR = REPO_ROOT / "dbt" / "insightflow"

MONTHS = [dt.date(2023 + i // 12, i % 12 + 1, 1) for i in range(24)]  # Jan 2023 .. Dec 2024
GROUPS = ["471", "472", "473"]
VOLUME_SA_FROM = dt.date(2024, 1, 1)  # older iowrt files lack the column, as in the real lake
BUDI95_FROM = dt.date(2024, 10, 1)  # fuelprice gained columns late; only these files carry one
MARTS = [
    "dim_date",
    "dim_msic_group",
    "fct_retail_sales_monthly",
    "fct_fuel_retail_correlation",
    "fct_headline_vs_fuel_monthly",
    "fct_retail_sales_vintages",
    "fct_retail_sales_revisions",
]


FIRST_SEEN = dt.datetime(2025, 1, 6, 5, 0, 0)  # when the pipeline "saw" the lake this module writes


def _by_month(rows: list[dict]) -> dict[tuple[int, int], list[dict]]:
    by_month: dict[tuple[int, int], list[dict]] = defaultdict(list)
    for row in rows:
        by_month[(row["ymd_date"].year, row["ymd_date"].month)].append(row)
    return by_month


def _month_table(month_rows: list[dict], schema: pa.Schema) -> pa.Table:
    names = [f.name for f in schema if any(f.name in r for r in month_rows)]
    file_schema = pa.schema([schema.field(n) for n in names])
    return pa.Table.from_pylist([{n: r.get(n) for n in names} for r in month_rows], schema=file_schema)


def write_history(
    lake: Path, dataset: str, rows: list[dict], schema: pa.Schema, seen_at: dt.datetime, months=None
) -> None:
    """Write one version per month (or only ``months``) under history/<dataset>/, as the flow keeps them."""
    for (year, month), month_rows in _by_month(rows).items():
        if months is not None and dt.date(year, month, 1) not in months:
            continue
        table = _month_table(month_rows, schema)
        table = table.append_column("version_seen_at", pa.array([seen_at] * table.num_rows, pa.timestamp("ms")))
        table = table.append_column("version_source_modified_at", pa.array([None] * table.num_rows, pa.timestamp("ms")))
        target = lake / "history" / dataset / f"year={year}" / f"month={month:02d}" / f"{seen_at:%Y%m%dT%H%M%S}.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, target)


def _write_partitioned(lake: Path, dataset: str, rows: list[dict], schema: pa.Schema, history: bool = True) -> None:
    """Write rows as raw/<dataset>/year=YYYY/month=MM/data.parquet, one file per month of ymd_date,
    and (``history``) each month's version, first seen at FIRST_SEEN, under history/."""
    by_month = _by_month(rows)
    root = lake / "raw" / dataset
    for (year, month), month_rows in by_month.items():
        target = root / f"year={year}" / f"month={month:02d}" / "data.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(_month_table(month_rows, schema), target)
    (root / "_manifest.json").write_text(json.dumps({"dataset": dataset, "files": len(by_month)}))
    if history:
        write_history(lake, dataset, rows, schema, FIRST_SEEN)


IOWRT_SCHEMA = pa.schema(
    [
        ("series", pa.string()),
        ("ymd_date", pa.date32()),
        ("sales", pa.float64()),
        ("volume", pa.float64()),
        ("volume_sa", pa.float64()),
    ]
)
IOWRT_3D_SCHEMA = pa.schema(
    [
        ("series", pa.string()),
        ("ymd_date", pa.date32()),
        ("group_code", pa.string()),
        ("sales", pa.float64()),
        ("volume", pa.float64()),
    ]
)
FUELPRICE_SCHEMA = pa.schema(
    [
        ("series_type", pa.string()),
        ("ymd_date", pa.date32()),
        ("ron95", pa.float64()),
        ("ron97", pa.float64()),
        ("diesel", pa.float64()),
        ("diesel_eastmsia", pa.float64()),
        ("ron95_budi95", pa.float64()),
    ]
)
MSIC_SCHEMA = pa.schema(
    [
        ("digits", pa.int64()),
        ("section", pa.string()),
        ("division", pa.string()),
        ("group_code", pa.string()),
        ("class_code", pa.string()),
        ("item", pa.string()),
        ("desc_en", pa.string()),
        ("desc_bm", pa.string()),
    ]
)


def make_lake_rows(seed: int = 7) -> dict[str, list[dict]]:
    """Deterministic rows for each dataset, in the lake's column names."""
    rng = random.Random(seed)
    iowrt, iowrt_3d, fuel = [], [], []
    for i, month in enumerate(MONTHS):
        headline = round(130_000 + 900 * i + rng.uniform(-4000, 4000), 1)
        row = {"series": "abs", "ymd_date": month, "sales": headline, "volume": round(125 + i * 0.4, 1)}
        if month >= VOLUME_SA_FROM:
            row["volume_sa"] = round(126 + i * 0.35, 1)
        iowrt.append(row)
        iowrt.append(
            {
                "series": "growth_yoy",
                "ymd_date": month,
                "sales": round(rng.uniform(2, 8), 1),
                "volume": round(rng.uniform(1, 6), 1),
            }
        )
        iowrt.append(
            {
                "series": "growth_mom",
                "ymd_date": month,
                "sales": round(rng.uniform(-3, 3), 1),
                "volume": round(rng.uniform(-3, 3), 1),
            }
        )
        for g, group in enumerate(GROUPS):
            iowrt_3d.append(
                {
                    "series": "abs",
                    "ymd_date": month,
                    "group_code": group,
                    "sales": round(5000 * (g + 1) + 40 * i + rng.uniform(-300, 300), 1),
                    "volume": round(100 + 0.5 * i + rng.uniform(-5, 5), 1),
                }
            )
            # growth rows must not leak into the fact
            iowrt_3d.append(
                {
                    "series": "growth_mom",
                    "ymd_date": month,
                    "group_code": group,
                    "sales": round(rng.uniform(-5, 5), 1),
                    "volume": round(rng.uniform(-5, 5), 1),
                }
            )
        # Two or three announcements a month, symmetric about a 2-dp centre so the monthly mean is exact.
        ron97 = round(3.20 + 0.05 * rng.randint(0, 8), 2)
        diesel = round(2.10 + 0.05 * rng.randint(0, 6), 2)
        spread = [-0.02, 0.0, 0.02] if i % 3 == 0 else [-0.01, 0.01]
        for w, delta in enumerate(spread):
            day = month + dt.timedelta(days=2 + 7 * w)
            level = {
                "series_type": "level",
                "ymd_date": day,
                "ron95": 2.05,
                "ron97": round(ron97 + delta, 2),
                "diesel": round(diesel + delta, 2),
                "diesel_eastmsia": round(diesel + delta, 2) if month < dt.date(2024, 6, 1) else 2.15,
            }
            change = {
                "series_type": "change_weekly",
                "ymd_date": day,
                "ron95": 0.0,
                "ron97": 0.01,
                "diesel": 0.01,
                "diesel_eastmsia": 0.0,
            }
            if month >= BUDI95_FROM:
                level["ron95_budi95"] = 1.99
                change["ron95_budi95"] = 0.0
            fuel.extend([level, change])
    msic = [
        {
            "digits": 1,
            "section": "G",
            "division": "-",
            "group_code": "-",
            "class_code": "-",
            "item": "-",
            "desc_en": "WHOLESALE AND RETAIL TRADE; REPAIR OF MOTOR VEHICLES AND MOTORCYCLES",
        },
        {
            "digits": 1,
            "section": "C",
            "division": "-",
            "group_code": "-",
            "class_code": "-",
            "item": "-",
            "desc_en": "MANUFACTURING",
        },
        {
            "digits": 2,
            "section": "G",
            "division": "47",
            "group_code": "-",
            "class_code": "-",
            "item": "-",
            "desc_en": "Retail trade, except of motor vehicles and motorcycles",
        },
        {
            "digits": 2,
            "section": "C",
            "division": "10",
            "group_code": "-",
            "class_code": "-",
            "item": "-",
            "desc_en": "Manufacture of food products",
        },
        {
            "digits": 3,
            "section": "G",
            "division": "47",
            "group_code": "471",
            "class_code": "-",
            "item": "-",
            "desc_en": "Retail sale in non-specialized stores",
        },
        {
            "digits": 3,
            "section": "G",
            "division": "47",
            "group_code": "472",
            "class_code": "-",
            "item": "-",
            "desc_en": "Retail sale of food, beverages and tobacco in specialized stores",
        },
        {
            "digits": 3,
            "section": "G",
            "division": "47",
            "group_code": "473",
            "class_code": "-",
            "item": "-",
            "desc_en": "Retail sale of automotive fuel in specialized stores",
        },
        {
            "digits": 3,
            "section": "C",
            "division": "10",
            "group_code": "101",
            "class_code": "-",
            "item": "-",
            "desc_en": "Processing and preserving of meat",
        },
        {
            "digits": 4,
            "section": "G",
            "division": "47",
            "group_code": "471",
            "class_code": "4711",
            "item": "-",
            "desc_en": "Retail sale in non-specialized stores with food predominating",
        },
        {
            "digits": 5,
            "section": "G",
            "division": "47",
            "group_code": "471",
            "class_code": "4711",
            "item": "47111",
            "desc_en": "Provision stores",
        },
    ]
    return {"iowrt": iowrt, "iowrt_3d": iowrt_3d, "fuelprice": fuel, "msic": msic}


def write_lake(lake: Path, rows: dict[str, list[dict]], history: bool = True) -> Path:
    _write_partitioned(lake, "iowrt", rows["iowrt"], IOWRT_SCHEMA, history)
    _write_partitioned(lake, "iowrt_3d", rows["iowrt_3d"], IOWRT_3D_SCHEMA, history)
    _write_partitioned(lake, "fuelprice", rows["fuelprice"], FUELPRICE_SCHEMA)
    msic_dir = lake / "raw" / "msic"
    msic_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows["msic"], schema=MSIC_SCHEMA), msic_dir / "data.parquet")
    (msic_dir / "_manifest.json").write_text("{}")
    return lake


def run_dbt(args: list[str], *, lake: Path, warehouse: Path, work: Path) -> dbtRunnerResult:
    """Invoke dbt in-process on the dev (DuckDB) target with all artefacts under ``work``."""
    env = {
        "INSIGHTFLOW_LAKE_DIR": str(lake),
        "INSIGHTFLOW_WAREHOUSE_PATH": str(warehouse),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DO_NOT_TRACK": "1",
    }
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        try:
            return dbtRunner().invoke(
                [
                    *args,
                    "--project-dir",
                    str(DBT_DIR),
                    "--profiles-dir",
                    str(DBT_DIR),
                    "--target",
                    "dev",
                    "--target-path",
                    str(work / "target"),
                    "--log-path",
                    str(work / "logs"),
                    "--quiet",
                ]
            )
        finally:
            _release_duckdb()


def _release_duckdb() -> None:
    """Close the database dbt-duckdb keeps open for the life of the process (a class attribute), so
    the test can open it read-only or copy it."""
    env = DuckDBConnectionManager._ENV
    if env is not None:
        env.close()
    DuckDBConnectionManager.close_all_connections()


def failed_nodes(result: dbtRunnerResult) -> set[str]:
    return {r.node.name for r in (result.result or []) if str(r.status) in {"fail", "error"}}


def query(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def fuel_monthly_means(fuel_rows: list[dict]) -> dict[dt.date, dict[str, float]]:
    weekly: dict[dt.date, list[dict]] = defaultdict(list)
    for r in fuel_rows:
        if r["series_type"] == "level":
            weekly[r["ymd_date"].replace(day=1)].append(r)
    return {
        m: {k: round(statistics.fmean(w[k] for w in ws), 2) for k in ("ron95", "ron97", "diesel")} | {"weeks": len(ws)}
        for m, ws in weekly.items()
    }


def pct_change(current: float | None, previous: float | None) -> float | None:
    if current is None or previous in (None, 0):
        return None
    return (current - previous) / previous * 100


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A lake, and a warehouse after one successful ``dbt build``."""
    root = tmp_path_factory.mktemp("dbt_insightflow")
    rows = make_lake_rows()
    lake = write_lake(root / "lake", rows)
    warehouse = root / "warehouse.duckdb"
    result = run_dbt(["build"], lake=lake, warehouse=warehouse, work=root)
    assert result.success, f"dbt build failed: {failed_nodes(result) or result.exception}"
    return {"root": root, "lake": lake, "warehouse": warehouse, "rows": rows, "result": result}


def test_build_runs_every_model_unit_test_and_data_test(built):
    statuses = defaultdict(int)
    for r in built["result"].result:
        statuses[r.node.resource_type] += 1
    assert statuses["model"] == 20
    assert statuses["unit_test"] >= 4
    assert statuses["test"] >= 80
    tables = query(
        built["warehouse"], "select table_name from information_schema.tables where table_type = 'BASE TABLE'"
    )
    assert sorted(t for (t,) in tables) == sorted(MARTS)


def test_fact_has_one_row_per_month_and_group_of_the_abs_series(built):
    abs_rows = [r for r in built["rows"]["iowrt_3d"] if r["series"] == "abs"]
    expected_keys = {(r["ymd_date"], r["group_code"]) for r in abs_rows}
    ((count, distinct_keys, sales),) = query(
        built["warehouse"],
        """
        select count(*), count(distinct (month_start_date, msic_group_code)), sum(sales_myr_million)
        from main.fct_retail_sales_monthly
    """,
    )
    assert count == distinct_keys == len(expected_keys) == 24 * len(GROUPS)
    assert sales == pytest.approx(sum(r["sales"] for r in abs_rows), abs=1e-6)


def test_fact_carries_the_hand_computed_monthly_fuel_average(built):
    means = fuel_monthly_means(built["rows"]["fuelprice"])
    month = dt.date(2024, 4, 1)  # three announcements that month (i % 3 == 0)
    assert means[month]["weeks"] == 3
    rows = query(
        built["warehouse"],
        f"""
        select distinct avg_ron95_myr_per_litre, avg_ron97_myr_per_litre, avg_diesel_myr_per_litre,
            avg_diesel_eastmsia_myr_per_litre, fuel_price_weeks
        from main.fct_retail_sales_monthly where month_start_date = date '{month}'
    """,
    )
    assert rows == [(2.05, means[month]["ron97"], means[month]["diesel"], means[month]["diesel"], 3)]
    # diesel in East Malaysia splits from Peninsular diesel from June 2024
    ((east,),) = query(
        built["warehouse"],
        """
        select distinct avg_diesel_eastmsia_myr_per_litre from main.fct_retail_sales_monthly
        where month_start_date = date '2024-07-01'
    """,
    )
    assert east == 2.15


def test_fact_month_on_month_growth_matches_levels(built):
    sales = {(r["ymd_date"], r["group_code"]): r["sales"] for r in built["rows"]["iowrt_3d"] if r["series"] == "abs"}
    expected = pct_change(sales[(dt.date(2024, 3, 1), "472")], sales[(dt.date(2024, 2, 1), "472")])
    ((growth,),) = query(
        built["warehouse"],
        """
        select sales_growth_mom_pct from main.fct_retail_sales_monthly
        where month_start_date = date '2024-03-01' and msic_group_code = '472'
    """,
    )
    assert growth == pytest.approx(expected, rel=1e-9)
    ((first_month_growth,),) = query(
        built["warehouse"],
        """
        select count(*) from main.fct_retail_sales_monthly
        where month_start_date = date '2023-01-01' and sales_growth_mom_pct is null
    """,
    )
    assert first_month_growth == len(GROUPS)


def test_correlation_matches_statistics_correlation_for_one_group(built):
    rows = built["rows"]
    means = fuel_monthly_means(rows["fuelprice"])
    sales = {r["ymd_date"]: r["sales"] for r in rows["iowrt_3d"] if r["series"] == "abs" and r["group_code"] == "471"}
    pairs = []
    for month in MONTHS[1:]:
        previous = MONTHS[MONTHS.index(month) - 1]
        pairs.append(
            (pct_change(sales[month], sales[previous]), pct_change(means[month]["diesel"], means[previous]["diesel"]))
        )
    expected = statistics.correlation([p[0] for p in pairs], [p[1] for p in pairs])

    ((n, diesel_corr, ron95_corr, description),) = query(
        built["warehouse"],
        """
        select months_compared, sales_growth_diesel_change_correlation, sales_growth_ron95_change_correlation,
            msic_group_description
        from main.fct_fuel_retail_correlation where msic_group_code = '471'
    """,
    )
    assert n == len(pairs) == 23
    assert diesel_corr == pytest.approx(expected, abs=1e-4)
    assert ron95_corr is None  # RON95 never moved: no correlation rather than NaN
    assert description == "Retail sale in non-specialized stores"
    assert query(built["warehouse"], "select count(*) from main.fct_fuel_retail_correlation") == [(len(GROUPS),)]


def test_headline_mart_pivots_series_and_tolerates_missing_volume_sa(built):
    iowrt = built["rows"]["iowrt"]
    yoy = {r["ymd_date"]: r["sales"] for r in iowrt if r["series"] == "growth_yoy"}
    rows = query(
        built["warehouse"],
        """
        select month_start_date, sales_myr_million, volume_sa_index, sales_growth_yoy_pct, fuel_price_weeks
        from main.fct_headline_vs_fuel_monthly order by month_start_date
    """,
    )
    assert len(rows) == 24
    assert sum(r[1] for r in rows) == pytest.approx(sum(r["sales"] for r in iowrt if r["series"] == "abs"))
    assert all(r[2] is None for r in rows if r[0] < VOLUME_SA_FROM)
    assert all(r[2] is not None for r in rows if r[0] >= VOLUME_SA_FROM)
    assert {r[0]: r[3] for r in rows} == yoy
    assert sum(r[4] for r in rows) == sum(1 for r in built["rows"]["fuelprice"] if r["series_type"] == "level")


def test_dimensions_cover_the_facts(built):
    assert query(
        built["warehouse"],
        """
        select count(*), min(month_start_date), max(month_start_date), count(distinct month_name)
        from main.dim_date
    """,
    ) == [(24, MONTHS[0], MONTHS[-1], 12)]
    assert query(
        built["warehouse"],
        """
        select msic_group_code, msic_division_description, msic_section_code, has_retail_trade_index
        from main.dim_msic_group order by 1
    """,
    ) == [
        ("101", "Manufacture of food products", "C", False),
        *[(g, "Retail trade, except of motor vehicles and motorcycles", "G", True) for g in GROUPS],
    ]


def test_source_freshness_runs_apart_from_build_and_flags_the_old_sample(built):
    # Same lake, warehouse and target path as the fixture's build, so dbt reuses its parse.
    result = run_dbt(["source", "freshness"], lake=built["lake"], warehouse=built["warehouse"], work=built["root"])

    statuses = {r.node.name: str(r.status) for r in result.result}
    # The sample ends in Dec 2024: past every error threshold. msic is a dictionary, not checked.
    assert statuses == {"iowrt": "error", "iowrt_3d": "error", "fuelprice": "error"}
    ages = {r.node.name: r.age for r in result.result}
    last_fuel = max(r["ymd_date"] for r in built["rows"]["fuelprice"])
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    fuel_age = now - dt.datetime.combine(last_fuel, dt.time())
    assert ages["fuelprice"] == pytest.approx(fuel_age.total_seconds(), abs=120)
    # DOSM months are aged from the end of the reference month
    assert ages["iowrt"] == pytest.approx((now - dt.datetime(2025, 1, 1)).total_seconds(), abs=120)


def test_incremental_run_adds_a_new_month_and_applies_revisions(built, tmp_path):
    rows = make_lake_rows()
    new_month, revised_month = dt.date(2025, 1, 1), dt.date(2024, 11, 1)
    for group in GROUPS:
        rows["iowrt_3d"].append(
            {"series": "abs", "ymd_date": new_month, "group_code": group, "sales": 9999.5, "volume": 111.0}
        )
    for r in rows["iowrt_3d"]:
        if r["ymd_date"] == revised_month and r["series"] == "abs" and r["group_code"] == "473":
            r["sales"] += 100.0
    lake = write_lake(tmp_path / "lake", rows)
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(built["warehouse"], warehouse)

    # a whole build, as the flow runs it: the fact is incremental here because its table exists
    result = run_dbt(["build"], lake=lake, warehouse=warehouse, work=tmp_path)

    assert result.success, failed_nodes(result)
    assert "assert_retail_sales_fact_matches_staging_totals" in {r.node.name for r in result.result}
    assert query(warehouse, "select count(*) from main.fct_retail_sales_monthly") == [(25 * len(GROUPS),)]
    expected_sales = sum(r["sales"] for r in rows["iowrt_3d"] if r["series"] == "abs")
    ((sales,),) = query(warehouse, "select sum(sales_myr_million) from main.fct_retail_sales_monthly")
    assert sales == pytest.approx(expected_sales, abs=1e-6)
    # the new month has no fuel prices: the left join keeps it with nulls
    assert query(
        warehouse,
        f"""
        select count(*) from main.fct_retail_sales_monthly
        where month_start_date = date '{new_month}' and avg_diesel_myr_per_litre is null and fuel_price_weeks = 0
    """,
    ) == [(len(GROUPS),)]


def test_bad_input_fails_the_tests_that_guard_it(tmp_path):
    rows = make_lake_rows()
    # a negative sales level for one group and month
    next(r for r in rows["iowrt_3d"] if r["series"] == "abs" and r["group_code"] == "472")["sales"] = -1.0
    # the same headline row landed twice
    rows["iowrt"].append(dict(rows["iowrt"][0]))
    lake = write_lake(tmp_path / "lake", rows)

    result = run_dbt(["build"], lake=lake, warehouse=tmp_path / "warehouse.duckdb", work=tmp_path)

    assert not result.success
    failures = failed_nodes(result)
    assert "accepted_range_fct_retail_sales_monthly_sales_myr_million__0" in failures
    assert any(name.startswith("unique_combination_of_columns_stg_iowrt_") for name in failures), failures


def _abs_values(rows: dict[str, list[dict]]) -> dict[tuple, tuple[float, float]]:
    """(month, group or None for the headline) -> (sales, volume) of the 'abs' series."""
    values = {(r["ymd_date"], None): (r["sales"], r["volume"]) for r in rows["iowrt"] if r["series"] == "abs"}
    values |= {
        (r["ymd_date"], r["group_code"]): (r["sales"], r["volume"]) for r in rows["iowrt_3d"] if r["series"] == "abs"
    }
    return values


@pytest.fixture(scope="module")
def revised(built, tmp_path_factory):
    """A lake after a second release that revised three (month, series) pairs, built on the first warehouse."""
    root = tmp_path_factory.mktemp("dbt_revised")
    first = make_lake_rows()
    lake = write_lake(root / "lake", first)
    second = copy.deepcopy(first)
    nov, dec = dt.date(2024, 11, 1), dt.date(2024, 12, 1)
    for r in second["iowrt_3d"]:
        if (r["series"], r["ymd_date"], r["group_code"]) == ("abs", nov, "471"):
            r["sales"] = round(r["sales"] * 1.02, 1)
        if (r["series"], r["ymd_date"], r["group_code"]) == ("abs", nov, "472"):
            r["volume"] = round(r["volume"] + 1.5, 1)
    for r in second["iowrt"]:
        if (r["series"], r["ymd_date"]) == ("abs", dec):
            r["sales"] = round(r["sales"] - 250.0, 1)
    second_seen = FIRST_SEEN + dt.timedelta(days=31)
    write_lake(lake, second, history=False)  # the raw partitions now hold the second release
    # the flow keeps a version of each partition that changed: Nov 2024 of iowrt_3d, Dec 2024 of iowrt
    write_history(lake, "iowrt_3d", second["iowrt_3d"], IOWRT_3D_SCHEMA, second_seen, months={nov})
    write_history(lake, "iowrt", second["iowrt"], IOWRT_SCHEMA, second_seen, months={dec})
    warehouse = root / "warehouse.duckdb"
    shutil.copy(built["warehouse"], warehouse)
    result = run_dbt(["build"], lake=lake, warehouse=warehouse, work=root)
    assert result.success, failed_nodes(result)
    return {"root": root, "lake": lake, "warehouse": warehouse, "first": first, "second": second, "seen": second_seen}


def test_revisions_mart_lists_exactly_the_revised_pairs_with_first_and_latest_values(revised):
    before, after = _abs_values(revised["first"]), _abs_values(revised["second"])
    changed = {key for key in after if after[key] != before[key]}
    assert len(changed) == 3  # the fixture's own edit, not the mart, says which pairs changed
    rows = query(
        revised["warehouse"],
        """
        select month_start_date, msic_group_code, first_sales_myr_million, latest_sales_myr_million, revision_pct,
            first_volume_index, latest_volume_index, revision_count, first_published_at, last_revised_at
        from main.fct_retail_sales_revisions
        """,
    )
    assert len(rows) == len(after)
    got = {(r[0], r[1]): r[2:] for r in rows}
    for key, (sales, volume) in after.items():
        first_sales, first_volume = before[key]
        row = got[key]
        assert row[:2] == (first_sales, sales) and row[3:5] == (first_volume, volume), key
        assert row[2] == pytest.approx(pct_change(sales, first_sales), abs=1e-9), key
        if key in changed:
            assert (row[5], row[6], row[7]) == (1, FIRST_SEEN, revised["seen"]), key
        else:
            assert (row[5], row[6], row[7]) == (0, FIRST_SEEN, None), key


def test_revisions_build_checks_latest_values_against_the_facts(revised):
    run = json.loads((revised["root"] / "target" / "run_results.json").read_text())
    statuses = {r["unique_id"].split(".")[2]: r["status"] for r in run["results"]}
    assert statuses["assert_revisions_latest_matches_current_facts"] == "pass"
    assert statuses["fct_retail_sales_revisions"] == "success"


def test_as_of_macro_returns_the_fact_as_known_before_the_revision(revised):
    before, after = _abs_values(revised["first"]), _abs_values(revised["second"])
    sql = "select month_start_date, msic_group_code, sales_myr_million, volume_index from ({{{{ {} }}}}) as known"
    values = {}
    for label, moment in (("before", revised["seen"] - dt.timedelta(days=1)), ("after", revised["seen"])):
        result = run_dbt(
            [
                "show",
                "--inline",
                sql.format(f"retail_sales_monthly_as_of('{moment:%Y-%m-%d %H:%M:%S}')"),
                "--limit",
                "-1",
            ],
            lake=revised["lake"],
            warehouse=revised["warehouse"],
            work=revised["root"],
        )
        assert result.success, result.exception
        values[label] = {(r[0], r[1]): (float(r[2]), float(r[3])) for r in result.result.results[0].agate_table.rows}
    groups_only = {key: value for key, value in before.items() if key[1] is not None}
    assert values["before"] == groups_only
    assert values["after"] == {key: value for key, value in after.items() if key[1] is not None}
    assert values["before"] != values["after"]
    # and nothing is known before the first landing
    result = run_dbt(
        ["show", "--inline", sql.format("retail_sales_monthly_as_of('2020-01-01 00:00:00')"), "--limit", "-1"],
        lake=revised["lake"],
        warehouse=revised["warehouse"],
        work=revised["root"],
    )
    assert result.success and len(result.result.results[0].agate_table.rows) == 0
