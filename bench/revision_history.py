"""History growth over many releases that each add a month and revise the three before it.

    python bench/revision_history.py                 # 60 releases, lake only
    python bench/revision_history.py --dbt           # and one dbt build over the final lake, timed

Lands release 0 of the sample (the trade indices from Jan 2015 to Aug 2025, fuel prices, MSIC), then
releases 1..N of the fixture's revision mode (tasks/insightflow/sample/data.py: each publishes one
new month and revises the three before it, for about 60 % of the groups, and so the headline), with
the real ``land()`` on a local lake, as the flow does after fetch and validate. Prints how many
objects and bytes history/ gains per release against what raw/ rewrites, how the landing time
changes from the first releases to the last, and what an unchanged re-landing writes (nothing).
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import time
from email.utils import formatdate
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import CouldNotMeasure, Report, tree_stats, workdir

TRADE = ("iowrt", "iowrt_3d")


def _land(lake, name: str, table, release: int):
    from tasks.insightflow.contracts import DATASETS
    from tasks.insightflow.ingest.fetch import Fetched
    from tasks.insightflow.ingest.land import land
    from tasks.insightflow.ingest.validate import conform

    conformed = conform(DATASETS[name], "bench", table)
    modified = formatdate(1_700_000_000 + release * 30 * 86_400, usegmt=True)
    digest = hashlib.sha256(f"{name}-{release}".encode()).hexdigest()
    fetched = Fetched(dataset=name, url="bench", status="new", content=b"", sha256=digest, last_modified=modified)
    return land(lake, DATASETS[name], conformed, fetched)


def _stats(root: Path, prefix: str) -> tuple[int, int]:
    files = bytes_ = 0
    for name in TRADE:
        f, b = tree_stats(root / prefix / name)
        files, bytes_ = files + f, bytes_ + b
    return files, bytes_


def _dbt_build(root: Path) -> float:
    """One plain ``dbt build`` of the project over the bench lake (the warehouse persists between calls)."""
    from tasks.core.dbt.runner import run_dbt

    env = {"INSIGHTFLOW_LAKE_DIR": str(root / "lake"), "INSIGHTFLOW_WAREHOUSE_PATH": str(root / "warehouse.duckdb")}
    started = time.perf_counter()
    run_dbt("insightflow", "dev", env, work_dir=root / "dbt", in_prefect=False)
    return time.perf_counter() - started


def _dbt_figures(root: Path, report: Report, first_s: float) -> None:
    import duckdb

    seconds = _dbt_build(root)
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as con:
        vintages, revised, pairs = con.sql(
            "select (select count(*) from fct_retail_sales_vintages), "
            "count(*) filter (where revision_count > 0), count(*) from fct_retail_sales_revisions"
        ).fetchall()[0]
    report.figure(
        "dbt build after release 0 vs after the last release",
        f"{first_s:.1f} vs {seconds:.1f}",
        "s",
        note="same warehouse, as the flow builds it; the first includes a cold parse",
    )
    report.figure(
        "vintages / revised pairs / pairs", f"{vintages:,} / {revised:,} / {pairs:,}", note="month x group, + headline"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--releases", type=int, default=60)
    parser.add_argument("--dbt", action="store_true", help="also time one dbt build over the final lake")
    args = parser.parse_args(argv)
    report = Report("revision history")
    from tasks.core.lake import LocalLake
    from tasks.insightflow.sample.data import RELEASED_TABLES, SAMPLE_TABLES

    try:
        with workdir("insightflow-bench-revisions-") as root:
            lake = LocalLake(root / "lake")
            for name, build in SAMPLE_TABLES.items():
                _land(lake, name, build(), 0)
            base_raw, base_history = _stats(root / "lake", "raw"), _stats(root / "lake", "history")
            first_dbt_s = _dbt_build(root) if args.dbt else 0.0
            report.info(f"release 0: raw {base_raw[0]} objects {base_raw[1]:,} B; history {base_history}")
            per_release = []
            history = base_history
            for release in range(1, args.releases + 1):
                tables = {name: RELEASED_TABLES[name](release) for name in TRADE}  # the fixture's work, not timed
                started = time.perf_counter()
                written = [_land(lake, name, tables[name], release) for name in TRADE]
                seconds = time.perf_counter() - started
                now = _stats(root / "lake", "history")
                raw_written = sum(len(r.partitions_written) for r in written)  # partitions rewritten in raw/
                per_release.append((seconds, now[0] - history[0], now[1] - history[1], raw_written))
                history = now
            if any(p[1] != p[3] for p in per_release):
                raise CouldNotMeasure("a release added history objects for partitions it did not rewrite")
            unchanged = [_land(lake, name, RELEASED_TABLES[name](args.releases), args.releases) for name in TRADE]
            if any(r.partitions_written or r.versions_recorded for r in unchanged):
                raise CouldNotMeasure("re-landing the last release unchanged wrote something")
            raw = _stats(root / "lake", "raw")
            n = len(per_release)
            report.figure("releases landed", n, note="each: 1 new month + 3 revised, iowrt and iowrt_3d")
            report.figure(
                "history objects added per release", statistics.fmean(p[1] for p in per_release), note="both datasets"
            )
            report.figure(
                "history bytes added per release",
                statistics.fmean(p[2] for p in per_release) / 1024,
                "KiB",
                note=f"min {min(p[2] for p in per_release) / 1024:.1f}, max {max(p[2] for p in per_release) / 1024:.1f}",
            )
            report.figure(
                "raw partitions rewritten per release = history objects added",
                f"{statistics.fmean(p[3] for p in per_release):.1f} = {statistics.fmean(p[1] for p in per_release):.1f}",
            )
            report.figure(
                "history after all releases",
                f"{history[0]:,} objects, {history[1] / 1024:,.0f} KiB",
                note=f"release 0 alone: {base_history[0]:,} objects, {base_history[1] / 1024:,.0f} KiB",
            )
            report.figure(
                "raw after all releases", f"{raw[0]:,} objects, {raw[1] / 1024:,.0f} KiB", note="the current version"
            )
            growth = (history[1] - base_history[1]) / n
            report.figure(
                "history growth per release vs raw size",
                100 * growth / raw[1],
                "%",
                note=f"{growth / 1024:.1f} KiB a release against {raw[1] / 1024:,.0f} KiB of raw",
            )
            first, last = per_release[: min(10, n)], per_release[-min(10, n) :]
            report.figure(
                "land seconds per release, first 10 vs last 10",
                f"{statistics.fmean(p[0] for p in first):.3f} vs {statistics.fmean(p[0] for p in last):.3f}",
                "s",
            )
            report.figure("unchanged re-landing writes", 0, "objects", target="0", met=True)
            if args.dbt:
                _dbt_figures(root, report, first_dbt_s)
    except CouldNotMeasure as exc:
        print(f"could not measure: {exc}", file=sys.stderr)
        return 1
    return 0 if not report.missed else 1


if __name__ == "__main__":
    sys.exit(main())
