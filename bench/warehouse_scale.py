"""Warehouse at scale: dbt build of dbt/insightflow on DuckDB over a lake with a large iowrt_3d.

    python bench/warehouse_scale.py              # 1e7-row iowrt_3d (about 5 minutes on 2 cores)
    python bench/warehouse_scale.py --rows 1e6   # quicker

Lands, with the project's land(): the sample iowrt and fuelprice, an MSIC dictionary that knows every
synthetic group, and an iowrt_3d-shaped table of ``--rows`` rows (3 series × G groups × 432 months).
Then, each in a fresh process (peak RSS = that process's), plain ``dbt build`` (run_dbt with
in_prefect=False): a cold build into an empty DuckDB file, then one extra month landed and a
second build, which shows what the incremental fact model saves (and what it does not).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    SERIES,
    CouldNotMeasure,
    Report,
    group_codes,
    iowrt_3d_scaled,
    iowrt_3d_shape,
    msic_for_groups,
    run_measured,
    tree_stats,
    workdir,
)

EXTRA_MONTH = date(2026, 1, 1)


def child_dbt(home: Path) -> dict:
    from tasks.core.dbt.runner import run_dbt

    env = {"INSIGHTFLOW_WAREHOUSE_PATH": str(home / "warehouse.duckdb"), "INSIGHTFLOW_LAKE_DIR": str(home / "lake")}
    started = time.perf_counter()
    summary = run_dbt("insightflow", "dev", env, args=["build"], work_dir=home / "dbt", in_prefect=False)
    seconds = time.perf_counter() - started
    results = json.loads((home / "dbt" / "target" / "run_results.json").read_text())
    nodes = {
        r["unique_id"]: {"seconds": r["execution_time"], "rows": (r.get("adapter_response") or {}).get("rows_affected")}
        for r in results["results"]
    }
    return {"seconds": seconds, "nodes": nodes, "count": len(summary.nodes)}


def _fetched(name: str, payload: bytes):
    from tasks.insightflow.ingest.fetch import Fetched

    return Fetched(
        dataset=name, url=f"bench://{name}", status="new", content=payload, sha256=hashlib.sha256(payload).hexdigest()
    )


def land_table(lake, name: str, table) -> object:
    from tasks.insightflow.contracts import DATASETS
    from tasks.insightflow.ingest.land import land
    from tasks.insightflow.ingest.validate import conform

    return land(lake, DATASETS[name], conform(DATASETS[name], f"bench://{name}", table), _fetched(name, b""))


def extra_month(codes: list[str], month: date, seed: int = 11):
    """One more month of every group and series, levels near the last month's."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    n = len(codes) * len(SERIES)
    series = [s for _ in codes for s in SERIES]
    is_abs = np.array([s == "abs" for s in series])
    sales = np.where(is_abs, rng.uniform(50, 5000, n), rng.normal(0.5, 3, n)).round(1)
    volume = np.where(is_abs, rng.normal(130, 2, n), rng.normal(0.3, 2, n)).round(1)
    return pa.table(
        {
            "series": series,
            "date": pa.array([month] * n, pa.date32()),
            "group": [c for c in codes for _ in SERIES],
            "sales": pa.array(sales, pa.float64()),
            "volume": pa.array(volume, pa.float64()),
        }
    )


def fact_rows(home: Path) -> int:
    import duckdb

    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute("select count(*) from fct_retail_sales_monthly").fetchall()[0][0]
    finally:
        con.close()


def slowest(nodes: dict, k: int = 5) -> str:
    top = sorted(nodes.items(), key=lambda kv: -kv[1]["seconds"])[:k]
    return "; ".join(
        f"{uid.split('.')[-1] if uid.startswith('model') else uid.split('.')[2]} {v['seconds']:.1f}s" for uid, v in top
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="1e7", help="rows of iowrt_3d (default 1e7)")
    parser.add_argument("--child", choices=["dbt"], help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child_dbt(args.home)))
        return 0

    from tasks.core.lake import LocalLake
    from tasks.insightflow.sample.data import SAMPLE_TABLES

    rows = int(float(args.rows))
    report = Report("warehouse at scale")
    print(f"load average before: {os.getloadavg()[0]:.2f} (2 cores)", flush=True)
    me = [sys.executable, str(Path(__file__).resolve()), "--child", "dbt"]
    try:
        with workdir("insightflow-bench-warehouse-") as home:
            lake = LocalLake(home / "lake")
            groups, n_months = iowrt_3d_shape(rows)
            codes = group_codes(groups)
            started = time.perf_counter()
            for name in ("iowrt", "fuelprice"):
                land_table(lake, name, SAMPLE_TABLES[name]())
            land_table(lake, "msic", msic_for_groups(codes))
            big = iowrt_3d_scaled(rows)
            land_table(lake, "iowrt_3d", big)
            files, size = tree_stats(home / "lake" / "raw" / "iowrt_3d")
            report.info(
                f"landed iowrt_3d: {big.num_rows:,} rows ({groups:,} groups × {n_months} months × 3 series), "
                f"{files} files, {size / 2**20:.0f} MiB, in {time.perf_counter() - started:.1f} s"
            )

            cold = run_measured([*me, "--home", str(home)])
            abs_rows = fact_rows(home)
            fct = "model.insightflow.fct_retail_sales_monthly"
            report.figure(
                f"dbt build cold, iowrt_3d {big.num_rows:,} rows",
                cold["seconds"],
                "s",
                note=f"{cold['count']} nodes; fact {abs_rows:,} rows; slowest: {slowest(cold['nodes'])}",
            )
            report.figure("dbt build cold peak RSS", cold["peak_rss_mib"], "MiB")

            extra = extra_month(codes, EXTRA_MONTH)
            import pyarrow as pa

            result = land_table(lake, "iowrt_3d", pa.concat_tables([big, extra]))
            report.info(
                f"landed one extra month ({extra.num_rows:,} rows): partitions written "
                f"{result.partitions_written}, unchanged {len(result.partitions_unchanged)}"
            )
            if result.partitions_written != [f"year={EXTRA_MONTH.year}/month={EXTRA_MONTH.month:02d}"]:
                raise CouldNotMeasure(f"expected exactly the new month to be written, got {result.partitions_written}")
            del big
            again = run_measured([*me, "--home", str(home)])
            after_rows = fact_rows(home)
            report.figure(
                "dbt build after one extra month",
                again["seconds"],
                "s",
                note=f"{100 * again['seconds'] / cold['seconds']:.0f}% of cold; slowest: {slowest(again['nodes'])}",
            )
            report.figure("dbt build after one extra month peak RSS", again["peak_rss_mib"], "MiB")
            f_cold, f_again = cold["nodes"].get(fct, {}), again["nodes"].get(fct, {})
            report.figure(
                "fct_retail_sales_monthly cold vs incremental",
                f"{f_cold.get('seconds', 0):.2f} vs {f_again.get('seconds', 0):.2f}",
                "s",
                note=f"incremental run rewrites the 3-month lookback + the new month, about "
                f"{4 * groups:,} rows of {after_rows:,} (+{after_rows - abs_rows:,} new)",
            )
            non_fact = sum(v["seconds"] for k, v in again["nodes"].items() if k != fct)
            report.figure(
                "re-run time outside the fact model (sum of node times)",
                non_fact,
                "s",
                note="views, full-refresh marts and every test re-run over all rows",
            )
    except CouldNotMeasure as exc:
        print(f"could not measure: {exc}", file=sys.stderr)
        return 2
    print(f"load average after: {os.getloadavg()[0]:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
