"""Two flow runs started at the same moment on one INSIGHTFLOW_HOME: the home lock serialises them."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.support import REPO_ROOT
from tests.support.hardening import CANARIES, history_free_key, lake_snapshot, warehouse_checksums

pytestmark = pytest.mark.integration


def test_two_runs_started_together_on_one_home_both_finish_and_match_a_single_run(cold_home, tmp_path):
    home = tmp_path / "home"
    env = {**os.environ, **CANARIES}
    env.pop("INSIGHTFLOW_HOME", None)
    command = [sys.executable, str(REPO_ROOT / "flows" / "insightflow.py"), "--sample", "--home", str(home)]
    logs = [open(tmp_path / f"run-{i}.log", "wb") for i in range(2)]
    started = time.monotonic()
    procs = [subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT) for log in logs]
    codes = [p.wait(timeout=600) for p in procs]
    elapsed = time.monotonic() - started
    for log in logs:
        log.close()
    outputs = [(tmp_path / f"run-{i}.log").read_text(errors="replace") for i in range(2)]
    for code, output in zip(codes, outputs, strict=True):
        # Either both finish (the second waited for the lock), or one refuses saying why.
        assert code == 0 or "is in use by another run" in output, output[-3000:]
    assert 0 in codes, outputs
    finished = [o for c, o in zip(codes, outputs, strict=True) if c == 0]
    if len(finished) == 2:
        # One of them built the warehouse, the other found everything unchanged after waiting.
        assert sum("dbt        skipped" in o for o in finished) == 1, finished
    # Not corrupted: DuckDB opens, and the marts and lake match a single uninterrupted run.
    assert warehouse_checksums(home / "warehouse.duckdb") == cold_home["warehouse"]
    lake = lake_snapshot(home / "lake")
    # Reports name their run and time, so they cannot match another home's byte for byte: one report, once.
    reports = [k for k in lake if k.startswith("reports/")]
    assert len([k for k in reports if k.endswith(".html") and not k.endswith("/latest.html")]) == 1, reports
    lake = {k: v for k, v in lake.items() if k not in reports}
    assert sorted(map(history_free_key, lake)) == sorted(
        history_free_key(k) for k in cold_home["lake"] if not k.startswith("reports/")
    )
    # Manifests and the lineage record (lineage/insightflow.json) hold landing times and this home's path.
    for key, (_, _size) in lake.items():
        if key.startswith("history/"):
            continue  # same partitions and content hashes (the key compared above); the seen-at stamps differ
        assert (home / "lake" / key).read_bytes() == (cold_home["home"] / "lake" / key).read_bytes() or key.endswith(
            ("_manifest.json", "lineage/insightflow.json")
        ), key
    assert not list((home / "lake").rglob(".tmp-*"))
    print(f"two concurrent runs: exit codes {codes} in {elapsed:.1f}s")
