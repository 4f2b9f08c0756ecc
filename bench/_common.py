"""Shared helpers for the benchmarks: figures, a throwaway Prefect server, timing and peak memory.

Every benchmark prints one ``FIGURE`` line per measured figure (name, value, unit, and the target
with MET / NOT MET where the issue sets one) and exits non-zero if it could not measure.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

FIRST_MONTH = date(1990, 1, 1)  # dim_date's accepted_range starts at 1990
SERIES = ("abs", "growth_mom", "growth_yoy")


class CouldNotMeasure(RuntimeError):
    """A benchmark step failed, so its figure would be meaningless."""


@dataclass
class Report:
    """Collects figures; ``exit_code`` is 0 only if everything was measured."""

    title: str
    lines: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)

    def figure(
        self,
        name: str,
        value: float | str,
        unit: str = "",
        target: str | None = None,
        met: bool | None = None,
        note: str = "",
    ) -> None:
        shown = (
            f"{value:.3g}"
            if isinstance(value, float) and abs(value) < 1000
            else (f"{value:,.0f}" if isinstance(value, float) else str(value))
        )
        line = f"FIGURE {name}: {shown}{(' ' + unit) if unit else ''}"
        if target:
            line += f"  [target {target}: {'MET' if met else 'NOT MET'}]"
            if not met:
                self.missed.append(name)
        if note:
            line += f"  ({note})"
        self.lines.append(line)
        print(line, flush=True)

    def info(self, text: str) -> None:
        print(f"  {text}", flush=True)


class ServerEnv(dict):
    """The environment that points clients at a benchmark's Prefect server, plus the server's process id."""

    pid: int


@contextlib.contextmanager
def prefect_server(workdir: Path, timeout_s: float = 300.0) -> Iterator[ServerEnv]:
    """A throwaway ``prefect server start`` (tasks/core/prefect_server.py); yields its client env.

    The env is also applied to ``os.environ`` for the duration, so import prefect only after entering.
    """
    from tasks.core.prefect_server import ServerStartError, local_prefect_server

    try:
        with local_prefect_server(workdir, timeout_s=timeout_s) as server:
            env = server.client_env()
            saved = {k: os.environ.get(k) for k in env}
            os.environ.update(env)
            try:
                server_env = ServerEnv(env)
                server_env.pid = server.pid
                yield server_env
            finally:
                for key, old in saved.items():
                    if old is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = old
    except ServerStartError as exc:
        raise CouldNotMeasure(str(exc)) from exc


@contextlib.contextmanager
def workdir(prefix: str, keep: bool = False) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a running process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib() -> float:
    """This process's current resident set size in MiB (Linux /proc)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run_measured(argv: list[str], env: dict[str, str] | None = None, timeout_s: float | None = None) -> dict:
    """Run ``argv`` in a fresh process; return its JSON result (last stdout line), peak RSS and CPU time.

    Peak RSS comes from the kernel's accounting of that one child (``os.wait4``), so each
    measurement starts from a clean heap and nothing of this process's memory is counted.
    """
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env or os.environ.copy(), cwd=REPO_ROOT
    )
    # Drain pipes in threads so a chatty child cannot block; wait4 gives this child's own rusage.
    import threading

    out: list[bytes] = []
    err: list[bytes] = []
    readers = [
        threading.Thread(target=lambda: out.append(proc.stdout.read())),
        threading.Thread(target=lambda: err.append(proc.stderr.read())),
    ]
    for t in readers:
        t.start()
    if timeout_s is not None:
        timer = threading.Timer(timeout_s, proc.kill)
        timer.start()
    _, status, usage = os.wait4(proc.pid, 0)
    if timeout_s is not None:
        timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    for t in readers:
        t.join()
    wall = time.perf_counter() - started
    stdout = b"".join(out).decode(errors="replace")
    stderr = b"".join(err).decode(errors="replace")
    if proc.returncode != 0:
        tail = "\n".join(line for line in stderr.splitlines() if "nanobind" not in line)[-3000:]
        raise CouldNotMeasure(f"{' '.join(argv[:4])}… exited {proc.returncode}:\n{tail}")
    try:
        result = json.loads(stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise CouldNotMeasure(f"no JSON result from {' '.join(argv[:4])}…; stdout: {stdout[-1000:]}") from None
    result["peak_rss_mib"] = usage.ru_maxrss / 1024
    result["cpu_s"] = usage.ru_utime + usage.ru_stime
    result["process_wall_s"] = wall
    return result


def months(count: int, first: date = FIRST_MONTH) -> list[date]:
    out, d = [], first
    for _ in range(count):
        out.append(d)
        d = date(d.year + (d.month == 12), d.month % 12 + 1, 1)
    return out


def group_codes(count: int) -> list[str]:
    """Synthetic MSIC-like group codes: the sample's real 3-digit codes first, then 7-digit ones."""
    from tasks.insightflow.sample.data import MSIC_GROUPS

    real = list(MSIC_GROUPS)
    return real[:count] + [f"47{i:05d}" for i in range(max(0, count - len(real)))]


def iowrt_3d_shape(rows: int, n_months: int = 432) -> tuple[int, int]:
    """(groups, months) so that 3 series × groups × months ≥ ``rows``; 432 months = 1990-01..2025-12."""
    groups = -(-rows // (len(SERIES) * n_months))
    return groups, n_months


def iowrt_3d_scaled(rows: int, n_months: int = 432, first: date = FIRST_MONTH, seed: int = 7):
    """An ``iowrt_3d``-shaped table as DOSM publishes it (series, date, group, sales, volume).

    Row order is the publisher's (group, then series, then month), so partitioning by month has to
    reorder every row, as with the real file.
    """
    import numpy as np
    import pyarrow as pa

    groups, n_months = iowrt_3d_shape(rows, n_months)
    rng = np.random.default_rng(seed)
    month_days = np.array([(m - date(1970, 1, 1)).days for m in months(n_months, first)], dtype=np.int32)
    codes = group_codes(groups)
    per_group = len(SERIES) * n_months
    n = groups * per_group
    group_idx = np.repeat(np.arange(groups, dtype=np.int32), per_group)
    series_idx = np.tile(np.repeat(np.arange(len(SERIES), dtype=np.int32), n_months), groups)
    month_idx = np.tile(np.arange(n_months, dtype=np.int32), groups * len(SERIES))
    level = rng.uniform(50, 5000, size=groups)[group_idx] * (1.003**month_idx)
    sales = np.where(series_idx == 0, level * rng.normal(1, 0.02, n), rng.normal(0.5, 3, n)).round(1)
    volume = np.where(series_idx == 0, 100 * (1.002**month_idx) * rng.normal(1, 0.01, n), rng.normal(0.3, 2, n)).round(
        1
    )
    return pa.table(
        {
            "series": pa.DictionaryArray.from_arrays(pa.array(series_idx), pa.array(SERIES)).cast(pa.string()),
            "date": pa.array(month_days[month_idx], pa.int32()).cast(pa.date32()),
            "group": pa.DictionaryArray.from_arrays(pa.array(group_idx), pa.array(codes)).cast(pa.string()),
            "sales": pa.array(sales, pa.float64()),
            "volume": pa.array(volume, pa.float64()),
        }
    )


def msic_for_groups(codes: list[str]):
    """The sample MSIC dictionary plus a digits=3 row for every synthetic group code."""
    import pyarrow as pa

    from tasks.insightflow.sample.data import MSIC_GROUPS, msic_table

    base = msic_table()
    extra = [c for c in codes if c not in MSIC_GROUPS]
    if not extra:
        return base
    rows = [
        {
            "digits": 3,
            "section": "G",
            "division": "47",
            "group": c,
            "class": "-",
            "item": "-",
            "desc_en": f"Synthetic group {c}",
            "exclude_en": None,
            "include_en": None,
            "desc_bm": f"KUMPULAN {c}",
            "exclude_bm": None,
            "include_bm": None,
        }
        for c in extra
    ]
    return pa.concat_tables([base, pa.Table.from_pylist(rows, schema=base.schema)])


def write_parquet_file(table, path: Path) -> int:
    """Write ``table`` as the publisher would (pyarrow defaults, one file); returns its size in bytes."""
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path.stat().st_size


def tree_stats(root: Path, pattern: str = "**/*.parquet") -> tuple[int, int]:
    files = [p for p in root.glob(pattern) if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def fmt_s(seconds: float) -> str:
    return f"{seconds:.2f}"
