"""The dbt step of InsightFlow: decide whether the warehouse needs a build, then run it.

A build is skipped when neither the landed data (every manifest's partition hashes) nor the dbt
project changed since the last successful build, so an unchanged daily re-run costs no dbt time.
When some datasets failed to land, the build excludes every model downstream of their sources.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import date
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.core.dbt.runner import (
    DbtBuildError,
    DbtSummary,
    project_dir,
    project_fingerprint,
    read_state,
    run_dbt,
    source_freshness,
    write_state,
)
from tasks.core.lake import Lake
from tasks.insightflow.contracts import DATASETS, manifest_key
from tasks.insightflow.ingest.history import history_table_name
from tasks.insightflow.ingest.land import lake_asset_key

PROJECT = "insightflow"
# dbt source name for each dataset host (dbt/insightflow/models/staging/<source>/).
DBT_SOURCE_BY_HOST = {"dosm": "dosm", "datagovmy": "datagovmy"}


def inputs_fingerprint(lake: Lake, datasets: list[str]) -> str:
    """A hash over what dbt would read: each dataset's landed partitions and the dbt project files."""
    digest = hashlib.sha256(project_fingerprint(project_dir(PROJECT)).encode())
    for name in sorted(datasets):
        parts = (lake.read_json(manifest_key(name)) or {}).get("partitions") or {}
        digest.update(json.dumps({name: {k: v.get("sha256") for k, v in parts.items()}}, sort_keys=True).encode())
    return digest.hexdigest()


# Datasets whose every landed version dbt reads too, as the source table <dataset>_history.
DBT_HISTORY_SOURCES = ("iowrt", "iowrt_3d")


def exclusions_for(failed: list[str]) -> list[str]:
    """dbt selectors for every model downstream of a dataset that did not land (or of its history)."""
    selectors = []
    for name in sorted(failed):
        source = DBT_SOURCE_BY_HOST[DATASETS[name].host]
        selectors.append(f"source:{source}.{name}+")
        if name in DBT_HISTORY_SOURCES:
            selectors.append(f"source:{source}.{history_table_name(name)}+")
    return selectors


def dbt_source_keys(lake: Lake) -> dict[str, str]:
    """Each dbt source (``<source>.<dataset>``) keyed as the lake dataset it reads, so lineage runs lake → dbt."""
    return {f"{DBT_SOURCE_BY_HOST[d.host]}.{name}": lake_asset_key(lake, name) for name, d in DATASETS.items()}


@task(name="dbt-build", cache_policy=NO_CACHE)
def build_warehouse(
    lake: Lake,
    target: str,
    env: Mapping[str, str],
    work_dir: Path,
    failed: list[str],
    full_refresh: bool = False,
    force: bool = False,
    node_tasks: bool = True,
) -> DbtSummary:
    """``dbt build`` of dbt/insightflow, or a recorded skip when nothing it reads has changed.

    ``node_tasks`` shows every model and test as its own task run under this one, reported from dbt's
    callbacks (tasks/core/dbt/node_runs.py; close to the cost of a plain ``dbt build``, see
    docs/performance.md); off, dbt runs once inside this task and the ``insightflow-dbt`` artifact
    still lists every node.
    """
    logger = get_run_logger()
    state_path = work_dir / "last-build.json"
    fingerprint = inputs_fingerprint(lake, list(DATASETS))
    warehouse = env.get("INSIGHTFLOW_WAREHOUSE_PATH")
    warehouse_ok = warehouse is None or Path(warehouse).exists()
    if (
        not (failed or full_refresh or force)
        and warehouse_ok
        and read_state(state_path).get("fingerprint") == fingerprint
    ):
        logger.info("dbt: inputs and project unchanged since the last successful build; skipping")
        return DbtSummary(
            project=PROJECT,
            target=target,
            command="build",
            elapsed_s=0.0,
            skipped=True,
            reason="inputs and project unchanged since the last successful build",
        )
    args = ["build"]
    if full_refresh:
        args.append("--full-refresh")
    if failed:
        args += ["--exclude", *exclusions_for(failed)]
        logger.warning("dbt: excluding models downstream of datasets that did not land: %s", ", ".join(failed))
    summary = run_dbt(
        PROJECT, target, env, args=args, work_dir=work_dir, in_prefect=node_tasks, source_keys=dbt_source_keys(lake)
    )
    if not failed:
        write_state(state_path, {"fingerprint": fingerprint})
    logger.info(
        "dbt: %d nodes in %.1fs (%d pass/success, %d skipped)",
        len(summary.nodes),
        summary.elapsed_s,
        summary.count("success") + summary.count("pass"),
        summary.count("skipped"),
    )
    return summary


@task(name="dbt-source-freshness", cache_policy=NO_CACHE)
def check_source_freshness(target: str, env: Mapping[str, str], work_dir: Path, as_of: date | None) -> list[dict]:
    """``dbt source freshness`` over the lake sources, as rows of the run's freshness table.

    The thresholds are the sources' own (``warn_after``/``error_after`` in _<source>__sources.yml); with
    ``as_of`` the newest rows are judged against that day instead of the warehouse clock
    (macros/collect_freshness.sql), as the offline sample is. Not being able to run it is a warning:
    the contract checks (freshness.py) still judge every dataset.
    """
    extra = {"INSIGHTFLOW_FRESHNESS_AS_OF": as_of.isoformat()} if as_of else {}
    try:
        results = source_freshness(PROJECT, target, {**env, **extra}, work_dir=work_dir)
    except DbtBuildError as exc:
        get_run_logger().warning("dbt source freshness did not run: %s", exc)
        return []
    rows = []
    for r in sorted(results, key=lambda r: r["table"]):
        age = None if r["age_s"] is None else int(r["age_s"] // 86400)
        loaded = r["max_loaded_at"]
        rows.append(
            {
                "dataset": r["table"],
                "check": "dbt source",
                # dbt's own terms: max(loaded_at_field), which for a monthly source is the month's end.
                "newest period": f"loaded_at {loaded.date().isoformat()}" if loaded else "n/a",
                "age (days)": "n/a" if age is None else age,
                "allowed (days)": r["warn_after"].replace(" day", "") or "n/a",
                "status": "fresh" if r["status"] == "pass" else f"stale (dbt {r['status']})",
                "note": r["message"] if r["status"] not in {"pass", "warn", "error"} else "",
            }
        )
    return rows
