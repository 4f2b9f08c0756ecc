"""Lake layout: files and bytes per dataset after landing the sample, against the original layout.

    python bench/lake_layout.py

The project lands one Parquet object per ``year=YYYY/month=MM`` (snappy, rows sorted by date) and
one object for the MSIC dictionary. The original (Kestra-era) project wrote one file per day for
fuel prices and one per month for the trade indices, with pandas ``to_parquet``; that layout is
written here from the same sample for comparison, and each layout is scanned once with DuckDB
(``count(*)`` over a ``read_parquet`` glob, as dbt's sources do).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import CouldNotMeasure, Report, tree_stats, workdir

ORIGINAL_GRAIN = {"fuelprice": "day", "iowrt": "month", "iowrt_3d": "month", "msic": None}


def land_project(root: Path) -> None:
    from tasks.core.lake import LocalLake
    from tasks.insightflow.contracts import DATASETS
    from tasks.insightflow.ingest.fetch import Fetched
    from tasks.insightflow.ingest.land import land
    from tasks.insightflow.ingest.validate import conform
    from tasks.insightflow.sample.data import SAMPLE_TABLES

    lake = LocalLake(root)
    for name, build in SAMPLE_TABLES.items():
        table = conform(DATASETS[name], "sample", build())
        land(
            lake,
            DATASETS[name],
            table,
            Fetched(
                dataset=name, url="sample", status="new", content=b"", sha256=hashlib.sha256(name.encode()).hexdigest()
            ),
        )


def write_original(root: Path) -> None:
    import pandas as pd

    from tasks.insightflow.sample.data import SAMPLE_TABLES

    for name, build in SAMPLE_TABLES.items():
        df = build().to_pandas()
        grain = ORIGINAL_GRAIN[name]
        folder = root / "raw" / name
        folder.mkdir(parents=True, exist_ok=True)
        if grain is None:
            df.to_parquet(folder / f"{name}.parquet", index=False)
            continue
        key = pd.to_datetime(df["date"]).dt.strftime("%Y-%m-%d" if grain == "day" else "%Y-%m")
        for value in key.unique():
            df[key == value].to_parquet(folder / f"{name}_{value}.parquet", index=False)


def scan_seconds(pattern: str) -> tuple[float, int]:
    import duckdb

    con = duckdb.connect()
    started = time.perf_counter()
    rows = con.sql(f"select count(*) from read_parquet('{pattern}', union_by_name = true)").fetchall()[0][0]
    seconds = time.perf_counter() - started
    con.close()
    return seconds, rows


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    report = Report("lake layout")
    try:
        with workdir("insightflow-bench-layout-") as wd:
            project, original = wd / "project", wd / "original"
            land_project(project)
            write_original(original)
            totals = {"project": [0, 0], "original": [0, 0]}
            for name in ORIGINAL_GRAIN:
                p_files, p_bytes = tree_stats(project / "raw" / name)
                o_files, o_bytes = tree_stats(original / "raw" / name)
                if not p_files or not o_files:
                    raise CouldNotMeasure(f"{name}: nothing written (project {p_files}, original {o_files} files)")
                totals["project"][0] += p_files
                totals["project"][1] += p_bytes
                totals["original"][0] += o_files
                totals["original"][1] += o_bytes
                p_scan, p_rows = scan_seconds(f"{project}/raw/{name}/**/*.parquet")
                o_scan, o_rows = scan_seconds(f"{original}/raw/{name}/*.parquet")
                if p_rows != o_rows:
                    raise CouldNotMeasure(f"{name}: layouts disagree on rows ({p_rows} vs {o_rows})")
                grain = ORIGINAL_GRAIN[name] or "single file"
                report.figure(
                    f"{name} files project vs original",
                    f"{p_files} vs {o_files}",
                    note=f"original one per {grain}" if ORIGINAL_GRAIN[name] else "both a single file",
                )
                report.figure(
                    f"{name} bytes project vs original",
                    f"{p_bytes:,} vs {o_bytes:,}",
                    note=f"{p_bytes / o_bytes:.2f}x; {p_rows:,} rows",
                )
                report.figure(
                    f"{name} DuckDB count(*) scan project vs original",
                    f"{p_scan * 1000:.0f} vs {o_scan * 1000:.0f}",
                    "ms",
                )
            report.figure(
                "all datasets files project vs original", f"{totals['project'][0]} vs {totals['original'][0]}"
            )
            report.figure(
                "all datasets bytes project vs original",
                f"{totals['project'][1]:,} vs {totals['original'][1]:,}",
                note=f"{totals['project'][1] / totals['original'][1]:.2f}x",
            )
    except CouldNotMeasure as exc:
        print(f"could not measure: {exc}", file=sys.stderr)
        return 2
    print(f"load average: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
