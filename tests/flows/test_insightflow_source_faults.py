"""Every way a source can misbehave, through the real flow, a real loopback server and a real lake.

Each case starts from a lake that already holds the sample, serves one dataset with a fault, and
checks the outcome contract: a clear error naming dataset, URL and cause (or success after
retries), the rejected payload in quarantine/, and every previously landed file byte-identical.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from tasks.insightflow.contracts import DATASETS

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_server")]


def snapshot(lake: Path) -> dict[str, str]:
    """sha256 of every file under raw/ (data and manifests)."""
    return {
        p.relative_to(lake).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((lake / "raw").rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def landed_home(tmp_path_factory) -> Path:
    from flows.insightflow import insightflow

    home = tmp_path_factory.mktemp("baseline")
    insightflow(settings={"sample": True, "home": str(home), "run_dbt": False})
    return home


@pytest.fixture
def home(landed_home, tmp_path) -> Path:
    target = tmp_path / "home"
    shutil.copytree(landed_home, target)
    return target


def run(home: Path, faults: dict[str, str], **params):
    from flows.insightflow import insightflow

    return insightflow(
        settings={"sample": True, "sample_faults": faults, "home": str(home), "run_dbt": False},
        **params,
        return_state=True,
    )


REJECTED = [
    ("iowrt", "html", "received an HTML/XML page, not Parquet"),
    ("iowrt_3d", "truncated", "truncated Parquet file"),
    ("fuelprice", "empty", "empty body (0 bytes)"),
    ("msic", "empty_table", "empty table (0 rows)"),
    ("iowrt", "corrupt", "corrupt Parquet file"),
    ("iowrt_3d", "missing_column:sales", "missing required column(s) sales"),
    ("fuelprice", "renamed_column:date=ymd", "missing required column(s) date"),
    ("iowrt_3d", "bad_values:volume", "column 'volume': 1 value(s) are not numbers, e.g. 'n/a'"),
]


@pytest.mark.parametrize("dataset, fault, cause", REJECTED, ids=[f"{d}-{f}" for d, f, _ in REJECTED])
def test_rejected_payload_fails_dataset_quarantines_and_keeps_lake(home, dataset, fault, cause):
    lake = home / "lake"
    before = snapshot(lake)
    state = run(home, {dataset: fault})

    assert state.is_failed()
    message = state.message
    url_path = DATASETS[dataset].path
    assert f"1 of 4 dataset(s) failed to land: {dataset}: dataset {dataset}: http://127.0.0.1:" in message
    assert url_path in message and cause in message
    assert snapshot(lake) == before, "a rejected payload must leave every landed file byte-identical"
    errors = sorted((lake / "quarantine" / dataset).glob("*/error.json"))
    assert len(errors) == 1
    record = json.loads(errors[0].read_text())
    assert cause in record["error"] and record["url"].endswith(url_path)
    assert (errors[0].parent / "payload.bin").exists()


def test_rejected_etag_is_not_remembered_so_the_next_run_fetches_again(home):
    lake = home / "lake"
    manifest = json.loads((lake / "raw/iowrt/_manifest.json").read_text())
    assert run(home, {"iowrt": "missing_column:sales"}).is_failed()
    assert json.loads((lake / "raw/iowrt/_manifest.json").read_text()) == manifest
    state = run(home, {"iowrt": "extra_column:sales_online"})  # a new, valid payload with a new ETag
    assert state.is_completed()
    assert "sales_online" in [c[0] for c in json.loads((lake / "raw/iowrt/_manifest.json").read_text())["columns"]]


def test_several_failures_are_all_listed_and_the_rest_still_land(tmp_path):
    state = run(tmp_path, {"iowrt": "html", "fuelprice": "404"})
    assert state.is_failed()
    assert "2 of 4 dataset(s) failed to land" in state.message
    assert "iowrt: dataset iowrt:" in state.message and "received an HTML/XML page" in state.message
    assert "fuelprice: dataset fuelprice:" in state.message and "HTTP 404" in state.message
    lake = tmp_path / "lake"
    assert (lake / "raw/iowrt_3d/_manifest.json").exists() and (lake / "raw/msic/_manifest.json").exists()
    assert not (lake / "raw/iowrt").exists() and not (lake / "raw/fuelprice").exists()


@pytest.mark.parametrize("fault", ["5xx:2", "429:1"])
def test_transient_faults_are_retried_to_success(home, fault):
    before = snapshot(home / "lake")
    state = run(home, {"fuelprice": fault})
    assert state.is_completed(), state.message
    assert snapshot(home / "lake") == before  # same source content: nothing re-landed


def test_persistent_5xx_gives_up_with_the_status_and_attempt_count(home):
    before = snapshot(home / "lake")
    state = run(home, {"msic": "5xx"})
    assert state.is_failed()
    assert "msic: dataset msic:" in state.message and "HTTP 503" in state.message and "gave up after" in state.message
    assert snapshot(home / "lake") == before
    assert not (home / "lake" / "quarantine").exists()  # nothing was received, so nothing to keep


def test_slow_source_times_out(home, monkeypatch):
    monkeypatch.setenv("INSIGHTFLOW_HTTP_TIMEOUT", "0.3")
    monkeypatch.setenv("INSIGHTFLOW_HTTP_ATTEMPTS", "2")
    state = run(home, {"iowrt": "slow:1.5"})
    assert state.is_failed() and "iowrt: dataset iowrt:" in state.message and "timed out" in state.message


def test_numbers_published_as_strings_land_identical_bytes(home):
    before = snapshot(home / "lake")
    state = run(home, {"iowrt_3d": "string_columns"})
    assert state.is_completed(), state.message
    after = snapshot(home / "lake")
    data_files = [k for k in before if k.endswith(".parquet")]
    assert all(after[k] == before[k] for k in data_files)  # coercion reproduces the typed encoding exactly


def test_new_publisher_column_is_carried_into_the_lake(home):
    import pyarrow.parquet as pq

    state = run(home, {"fuelprice": "extra_column:diesel_skds"})
    assert state.is_completed(), state.message
    table = pq.read_table(str(home / "lake/raw/fuelprice"), partitioning="hive")
    assert "diesel_skds" in table.column_names and "ron95_budi95" in table.column_names
    assert set(table["diesel_skds"].to_pylist()) == {1.99}


def test_unchanged_sources_answer_304_and_nothing_is_relanded(home):
    before = {p: p.stat().st_mtime_ns for p in (home / "lake/raw").rglob("*") if p.is_file()}
    state = run(home, {})
    assert state.is_completed()
    result = state.result()
    assert set(result["datasets"].values()) == {"unchanged"}
    assert {p: p.stat().st_mtime_ns for p in (home / "lake/raw").rglob("*") if p.is_file()} == before
