"""SIGKILL a process in the middle of land(), 20 times: the lake never shows a partial partition.

The landed dataset is iowrt_3d-shaped with 432 monthly partitions. The new version changes every
row's sales, drops the first month and adds a month, so a landing rewrites every partition, deletes
one and creates one: a kill can fall in any of those steps, or between the last partition and the
manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from tasks.core.lake import LocalLake
from tasks.insightflow.contracts import IOWRT_3D, manifest_key, partition_object_key
from tasks.insightflow.ingest.fetch import Fetched
from tasks.insightflow.ingest.land import encode_parquet, land, partition_slices
from tasks.insightflow.ingest.validate import conform
from tests.support import REPO_ROOT

pytestmark = pytest.mark.integration

KILLS = 20
_EMPTY = hashlib.sha256(b"").hexdigest()[:16]
SEED = int(os.environ.get("INSIGHTFLOW_CRASH_SEED", "20240611"))
ROWS = 200_000


def _versions() -> tuple[pa.Table, pa.Table]:
    sys.path.insert(0, str(REPO_ROOT))
    from bench._common import iowrt_3d_scaled

    old = conform(IOWRT_3D, "old", iowrt_3d_scaled(ROWS, n_months=432))
    new = old.set_column(old.column_names.index("sales"), "sales", pc.multiply(old["sales"], 1.01))
    dates = old["ymd_date"]
    first, last = pc.min(dates).as_py(), pc.max(dates).as_py()
    new = new.filter(pc.not_equal(new["ymd_date"], pa.scalar(first, pa.date32())))
    extra = new.filter(pc.equal(new["ymd_date"], pa.scalar(last, pa.date32())))
    extra = extra.set_column(
        extra.column_names.index("ymd_date"),
        "ymd_date",
        pa.array([last.replace(year=last.year + 1)] * extra.num_rows, pa.date32()),
    )
    return old, pa.concat_tables([new, extra])


def _encodings(table: pa.Table) -> dict[str, bytes]:
    return {p: encode_parquet(rows) for p, rows in partition_slices(IOWRT_3D, table)}


def _warehouse_numbers(lake_dir: Path) -> tuple:
    import duckdb

    con = duckdb.connect()
    try:
        return con.execute(
            f"select count(*), round(sum(sales), 4), count(distinct ymd_date) "
            f"from read_parquet('{lake_dir}/raw/iowrt_3d/*/*/*.parquet')"
        ).fetchall()[0]
    finally:
        con.close()


class Worker:
    def __init__(self, log: Path):
        self.stderr = open(log, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(REPO_ROOT / "tests" / "support" / "land_worker.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            cwd=REPO_ROOT,
        )
        assert self._line() == "ready"

    def _line(self) -> str:
        line = self.proc.stdout.readline().strip()
        if not line:
            raise AssertionError(f"land worker died; see {self.stderr.name}")
        return line

    def start(self, lake_dir: Path, table_path: Path) -> int:
        self.proc.stdin.write(f"land {lake_dir} {table_path}\n")
        self.proc.stdin.flush()
        word, pid = self._line().split()
        assert word == "pid"
        return int(pid)

    def finish(self) -> tuple[int, float]:
        word, status, seconds = self._line().split()
        assert word == "done"
        return int(status), float(seconds)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self.stderr.close()


@pytest.fixture(scope="module")
def versions(tmp_path_factory):
    base = tmp_path_factory.mktemp("crash")
    old, new = _versions()
    pq.write_table(new, base / "new.parquet")
    # The worker lands exactly the table it reads back; check that round trip keeps the encoding.
    assert _encodings(pq.read_table(base / "new.parquet")) == _encodings(new)
    pristine = base / "pristine"
    land(
        LocalLake(pristine),
        IOWRT_3D,
        old,
        Fetched(dataset="iowrt_3d", url="old", status="new", content=b"", sha256="old"),
    )
    reference = base / "reference"
    shutil.copytree(pristine, reference)
    land(
        LocalLake(reference),
        IOWRT_3D,
        new,
        Fetched(dataset="iowrt_3d", url="new", status="new", content=b"", sha256="new"),
    )
    return {
        "base": base,
        "old": _encodings(old),
        "new": _encodings(new),
        "pristine": pristine,
        "new_path": base / "new.parquet",
        "expected": _warehouse_numbers(reference),
        "old_manifest": json.loads((pristine / manifest_key("iowrt_3d")).read_text()),
        "new_manifest_parts": json.loads((reference / manifest_key("iowrt_3d")).read_text())["partitions"],
    }


def _check_lake(lake_dir: Path, v: dict) -> str:
    """Assert every visible partition is the old or new encoding; return 'old', 'new' or 'mixed'."""
    dataset_dir = lake_dir / "raw" / "iowrt_3d"
    seen = {"old": 0, "new": 0}
    for path in sorted(dataset_dir.glob("*/*/*.parquet")):
        assert path.name == "data.parquet", f"a temporary or stray file is visible to the glob: {path}"
        partition = path.parent.relative_to(dataset_dir).as_posix()
        data = path.read_bytes()
        if data == v["new"].get(partition):
            seen["new"] += 1
        elif data == v["old"].get(partition):
            seen["old"] += 1
        else:
            raise AssertionError(f"{partition}: {len(data)} bytes that are neither the old nor the new encoding")
    manifest = json.loads((lake_dir / manifest_key("iowrt_3d")).read_text())  # always whole JSON
    if manifest["partitions"] != v["old_manifest"]["partitions"]:
        # The manifest is written last: once it describes the new version, all of it is in place.
        assert _without_versions(manifest["partitions"]) == _without_versions(v["new_manifest_parts"])
        for entry in manifest["partitions"].values():
            assert hashlib.sha256((lake_dir / entry["key"]).read_bytes()).hexdigest() == entry["sha256"]
    # Nothing landed is lost: whatever a partition holds now, old or new, is already a version in history/
    # (written before the partition), and the version the manifest names holds the manifest's rows.
    history = _history_shas(lake_dir)
    for path in sorted(dataset_dir.glob("*/*/*.parquet")):
        partition = path.parent.relative_to(dataset_dir).as_posix()
        assert hashlib.sha256(path.read_bytes()).hexdigest()[:16] in history.get(partition, []), partition
    for partition, entry in manifest["partitions"].items():
        kept = pq.read_table(lake_dir / entry["version"]["key"])
        kept = kept.drop_columns(["version_seen_at", "version_source_modified_at"])
        assert (
            encode_parquet(kept)
            == v["old" if entry == v["old_manifest"]["partitions"].get(partition) else "new"][partition]
        ), partition
    return "new" if not seen["old"] else "old" if not seen["new"] else "mixed"


def _without_versions(parts: dict) -> dict:
    """Manifest partitions without their history entry (its seen-at time differs from run to run)."""
    return {p: {k: v for k, v in entry.items() if k != "version"} for p, entry in parts.items()}


def _history_shas(lake_dir: Path) -> dict[str, list[str]]:
    """partition -> the content hashes of its history versions, oldest first (from the object names)."""
    root = lake_dir / "history" / "iowrt_3d"
    return {
        folder.relative_to(root).as_posix(): [p.stem.rsplit("-", 1)[1] for p in sorted(folder.glob("*.parquet"))]
        for folder in sorted(root.glob("*/*"))
    }


def test_land_killed_at_random_points_leaves_only_old_or_new_partitions(versions, tmp_path):
    rng = random.Random(SEED)
    worker = Worker(tmp_path / "worker.log")
    try:
        # An uninterrupted landing first, to know how long the kill window is.
        timing = tmp_path / "timing"
        shutil.copytree(versions["pristine"], timing)
        worker.start(timing, versions["new_path"])
        status, window = worker.finish()
        assert status == 0
        assert _check_lake(timing, versions) == "new"
        outcomes = []
        for i in range(KILLS):
            lake_dir = tmp_path / f"lake-{i}"
            shutil.copytree(versions["pristine"], lake_dir)
            pid = worker.start(lake_dir, versions["new_path"])
            time.sleep(rng.uniform(0, window * 1.1))
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            status, _ = worker.finish()
            state = _check_lake(lake_dir, versions)
            outcomes.append((status, state))
            # Recovery: what the next flow run does (sweep write-aside files, land again).
            lake = LocalLake(lake_dir)
            lake.sweep_temporary("raw")
            lake.sweep_temporary("history")
            land(
                lake,
                IOWRT_3D,
                pq.read_table(versions["new_path"]),
                Fetched(dataset="iowrt_3d", url="new", status="new", content=b"", sha256="new"),
            )
            assert not list(lake_dir.rglob(".tmp-*"))
            assert _check_lake(lake_dir, versions) == "new"
            assert _warehouse_numbers(lake_dir) == versions["expected"], f"kill {i}: numbers differ after re-run"
            # History: the old version of every partition and the new one of each changed partition, once each
            # (a version written before the kill is reused by the re-run, not written again).
            expected_history = {
                p: [
                    hashlib.sha256(data).hexdigest()[:16]
                    for data in (versions["old"].get(p, b""), versions["new"].get(p, b""))
                ]
                for p in set(versions["old"]) | set(versions["new"])
            }
            expected_history = {p: [h for h in hs if h != _EMPTY] for p, hs in expected_history.items()}
            assert _history_shas(lake_dir) == expected_history, f"kill {i}"
            shutil.rmtree(lake_dir)
        killed_midway = sum(1 for status, state in outcomes if status == -signal.SIGKILL and state == "mixed")
        print(f"seed {SEED}; land window {window:.2f}s; outcomes {outcomes}")
        assert killed_midway >= KILLS // 4, f"only {killed_midway} of {KILLS} kills interrupted a landing: {outcomes}"
    finally:
        worker.close()


def test_partition_keys_cover_the_dataset(versions):
    assert partition_object_key("iowrt_3d", "year=2024/month=01") == "raw/iowrt_3d/year=2024/month=01/data.parquet"
    assert set(versions["new"]) - set(versions["old"]) and set(versions["old"]) - set(versions["new"])
