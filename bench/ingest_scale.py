"""Ingestion at scale: validate + land of an ``iowrt_3d``-shaped file, against two references.

    python bench/ingest_scale.py                 # 1e6 rows (about 2 minutes)
    python bench/ingest_scale.py --rows 1e6,1e7  # adds 1e7 rows (several minutes more)

The file has DOSM's published shape (series, date, group, sales, volume), 3 series × G groups ×
432 months (1990-01..2025-12), rows in the publisher's group-major order. Each measurement runs in a
fresh process; time covers reading the file to the last byte written, and peak memory is that
process's peak RSS (kernel accounting) minus its RSS after imports.
  project: read_parquet_bytes + conform + land() into a LocalLake (atomic, fsynced writes, manifest)
  (a) the original project's algorithm: pandas reads the file, then for each period filters the whole
      frame (df[df.period == p]) and writes that period with to_parquet
  (b) the floor: pyarrow reads the file and writes it with pyarrow.dataset.write_dataset, hive
      partitioned on year/month, nothing else
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    CouldNotMeasure,
    Report,
    iowrt_3d_scaled,
    rss_mib,
    run_measured,
    tree_stats,
    workdir,
    write_parquet_file,
)

TARGET_VS_PANDAS = 20.0
TARGET_VS_FLOOR = 1.5
TARGET_MEMORY_X = 3.0
PANDAS_LIMIT_ROWS = 2_000_000  # (a) is quadratic in practice: months × rows; see --pandas-at-scale


def _pool_peak_mib() -> float:
    import pyarrow as pa

    return pa.default_memory_pool().max_memory() / 2**20


def _warm_up(path: Path, out: Path, fn) -> None:
    """Run ``fn`` once on the file's first 1,000 rows, so lazily loaded code and thread pools are not
    counted as the measurement's memory or time; then forget that pool peak."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    small = path.with_name(f"warm-{os.getpid()}.parquet")
    pq.write_table(pq.ParquetFile(path).read_row_group(0).slice(0, 1000), small)
    fn(small, out.with_name(out.name + "-warm"), warm=False)
    small.unlink()
    import shutil

    shutil.rmtree(out.with_name(out.name + "-warm"), ignore_errors=True)
    try:
        pa.default_memory_pool().release_unused()
    except AttributeError:
        pass


def child_project(path: Path, out: Path, warm: bool = True) -> dict:
    from tasks.core.lake import LocalLake
    from tasks.insightflow.contracts import IOWRT_3D
    from tasks.insightflow.ingest.fetch import Fetched
    from tasks.insightflow.ingest.land import land
    from tasks.insightflow.ingest.validate import conform, read_parquet_bytes

    if warm:
        _warm_up(path, out, child_project)
    base = rss_mib()
    started = time.perf_counter()
    content = path.read_bytes()
    url = f"file://{path}"
    fetched = Fetched(
        dataset=IOWRT_3D.name, url=url, status="new", content=content, sha256=hashlib.sha256(content).hexdigest()
    )
    decoded = read_parquet_bytes(IOWRT_3D.name, url, content)
    decoded_bytes = decoded.nbytes
    table = conform(IOWRT_3D, url, decoded)
    del decoded
    validated = time.perf_counter()
    result = land(LocalLake(out), IOWRT_3D, table, fetched)
    done = time.perf_counter()
    return {
        "seconds": done - started,
        "validate_s": validated - started,
        "land_s": done - validated,
        "rows": table.num_rows,
        "decoded_bytes": decoded_bytes,
        "base_rss_mib": base,
        "pool_peak_mib": _pool_peak_mib(),
        "partitions": len(result.partitions_written),
    }


def child_pandas(path: Path, out: Path, warm: bool = True) -> dict:
    import pandas as pd

    if warm:
        _warm_up(path, out, child_pandas)
    base = rss_mib()
    started = time.perf_counter()
    df = pd.read_parquet(path)
    df["period"] = pd.to_datetime(df["date"]).dt.strftime("%Y-%m")
    periods = df["period"].unique()
    for p in periods:
        part = df[df.period == p]
        target = out / f"year={p[:4]}" / f"month={p[5:]}"
        target.mkdir(parents=True, exist_ok=True)
        part.drop(columns="period").to_parquet(target / "data.parquet", index=False)
    done = time.perf_counter()
    return {"seconds": done - started, "rows": len(df), "base_rss_mib": base, "partitions": len(periods)}


def child_floor(path: Path, out: Path, warm: bool = True) -> dict:
    import pyarrow.compute as pc
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    if warm:
        _warm_up(path, out, child_floor)
    base = rss_mib()
    started = time.perf_counter()
    table = pq.read_table(path)
    date = table.column("date")
    table = table.append_column("year", pc.year(date)).append_column("month", pc.month(date))
    ds.write_dataset(
        table,
        out,
        format="parquet",
        partitioning=["year", "month"],
        partitioning_flavor="hive",
        existing_data_behavior="overwrite_or_ignore",
        max_partitions=100_000,
    )
    done = time.perf_counter()
    return {"seconds": done - started, "rows": table.num_rows, "base_rss_mib": base, "pool_peak_mib": _pool_peak_mib()}


CHILDREN = {"project": child_project, "pandas": child_pandas, "floor": child_floor}


def measure(kind: str, path: Path, out_root: Path, repeat: int) -> dict:
    """Best time and worst memory over ``repeat`` fresh processes, each into an empty directory."""
    best: dict | None = None
    peak = 0.0
    for i in range(repeat):
        out = out_root / f"{kind}-{i}"
        r = run_measured(
            [sys.executable, str(Path(__file__).resolve()), "--child", kind, "--input", str(path), "--out", str(out)]
        )
        r["files"], r["bytes"] = tree_stats(out)
        peak = max(peak, r["peak_rss_mib"] - r["base_rss_mib"])
        if best is None or r["seconds"] < best["seconds"]:
            best = r
        import shutil

        shutil.rmtree(out, ignore_errors=True)
    assert best is not None
    best["peak_delta_mib"] = peak
    return best


def parse_rows(text: str) -> list[int]:
    return [int(float(x)) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="1e6", help="comma-separated row counts, e.g. 1e6,1e7")
    parser.add_argument("--repeat", type=int, default=2, help="fresh processes per measurement (best time kept)")
    parser.add_argument(
        "--pandas-at-scale", action="store_true", help=f"also run (a) above {PANDAS_LIMIT_ROWS:,} rows (slow)"
    )
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(CHILDREN[args.child](args.input, args.out)))
        return 0

    report = Report("ingestion at scale")
    print(f"load average before: {os.getloadavg()[0]:.2f} (2 cores)", flush=True)
    try:
        with workdir("insightflow-bench-ingest-") as wd:
            for rows in parse_rows(args.rows):
                table = iowrt_3d_scaled(rows)
                path = wd / f"iowrt_3d-{rows}.parquet"
                size = write_parquet_file(table, path)
                n = table.num_rows
                del table
                label = f"{n:,} rows"
                report.info(f"{label}: input file {size / 2**20:.1f} MiB")
                project = measure("project", path, wd, args.repeat)
                floor = measure("floor", path, wd, args.repeat)
                pandas = None
                if rows <= PANDAS_LIMIT_ROWS or args.pandas_at_scale:
                    pandas = measure("pandas", path, wd, 1 if rows > PANDAS_LIMIT_ROWS else args.repeat)
                decoded_mib = project["decoded_bytes"] / 2**20
                report.figure(
                    f"project validate+land, {label}",
                    project["seconds"],
                    "s",
                    note=f"{n / project['seconds']:,.0f} rows/s; validate {project['validate_s']:.2f} s, "
                    f"land {project['land_s']:.2f} s; {project['files']} files, "
                    f"{project['bytes'] / 2**20:.1f} MiB",
                )
                report.figure(
                    f"floor pyarrow write_dataset, {label}",
                    floor["seconds"],
                    "s",
                    note=f"{n / floor['seconds']:,.0f} rows/s; {floor['files']} files, "
                    f"{floor['bytes'] / 2**20:.1f} MiB",
                )
                ratio = project["seconds"] / floor["seconds"]
                report.figure(
                    f"project / floor time, {label}", ratio, "x", f"<= {TARGET_VS_FLOOR:g}x", ratio <= TARGET_VS_FLOOR
                )
                if pandas is not None:
                    report.figure(
                        f"original pandas per-period filter, {label}",
                        pandas["seconds"],
                        "s",
                        note=f"{n / pandas['seconds']:,.0f} rows/s; {pandas['files']} files, "
                        f"{pandas['bytes'] / 2**20:.1f} MiB",
                    )
                    speedup = pandas["seconds"] / project["seconds"]
                    target = f">= {TARGET_VS_PANDAS:g}x" if rows <= PANDAS_LIMIT_ROWS else None
                    report.figure(
                        f"project speed-up over original, {label}",
                        speedup,
                        "x",
                        target,
                        speedup >= TARGET_VS_PANDAS if target else None,
                    )
                else:
                    report.figure(
                        f"original pandas per-period filter, {label}",
                        "not run",
                        note="quadratic in months × rows; measured at 1e6 only (--pandas-at-scale to force)",
                    )
                mem_x = project["peak_delta_mib"] / decoded_mib
                report.figure(
                    f"project peak memory, {label}",
                    project["peak_delta_mib"],
                    "MiB above baseline",
                    note=f"decoded table {decoded_mib:.0f} MiB; peak RSS {project['peak_rss_mib']:.0f} MiB; "
                    f"arrow pool peak {project['pool_peak_mib']:.0f} MiB",
                )
                report.figure(
                    f"project peak memory / decoded table, {label}",
                    mem_x,
                    "x",
                    f"< {TARGET_MEMORY_X:g}x",
                    mem_x < TARGET_MEMORY_X,
                )
                report.figure(
                    f"floor peak memory, {label}",
                    floor["peak_delta_mib"],
                    "MiB above baseline",
                    note=f"{floor['peak_delta_mib'] / decoded_mib:.2f}x decoded",
                )
                if pandas is not None:
                    report.figure(
                        f"original peak memory, {label}",
                        pandas["peak_delta_mib"],
                        "MiB above baseline",
                        note=f"{pandas['peak_delta_mib'] / decoded_mib:.2f}x decoded",
                    )
                path.unlink()
    except CouldNotMeasure as exc:
        print(f"could not measure: {exc}", file=sys.stderr)
        return 2
    print(f"load average after: {os.getloadavg()[0]:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
