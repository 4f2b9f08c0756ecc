"""Bring the warehouse up to the lake after a tick: decide, load what landed, build the dbt project.

Only when something landed (or the warehouse is behind: its file is missing, the dbt project changed, a
full check or refresh is asked) does a tick load the new snapshots (DuckDB under the home lock, or
Snowflake with COPY INTO) and build ``dbt/football``; an unchanged tick never connects to the warehouse
(snapshots.plan_sync decides; docs/football.md has what a tick costs).
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prefect import get_run_logger

from tasks.core.dbt.runner import project_dir, project_fingerprint, run_dbt
from tasks.core.locks import home_lock
from tasks.football.keys import dbt_source_keys, duckdb_table_keys, snowflake_table_keys
from tasks.football.load import load_raw_duckdb
from tasks.football.snapshots import Outcome, SyncPlan, mark_synced, plan_sync
from tasks.football.snowflake import SnowflakeLayout, copy_into_raw, stage_url

if TYPE_CHECKING:
    from tasks.football.settings import Runtime

PROJECT = "football"


@dataclass
class WarehouseSync:
    """What a tick did to the warehouse: the plan, rows loaded per endpoint, and the dbt build (None if none ran)."""

    plan: SyncPlan
    loaded: dict[str, int] | None = None
    dbt_summary: Any = None


def dbt_build_args(select: list[str] | None, full_check: bool, full_refresh: bool) -> list[str]:
    """``dbt build`` arguments for a tick."""
    args = ["build", "--select", *select] if select else ["build"]
    if full_refresh:
        args.append("--full-refresh")
    if full_check:
        # Data tests on the big models check only the newest load unless this var is set (macros/football_new_rows.sql).
        args += ["--vars", '{"football_full_check": true}']
    return args


def plan_warehouse_sync(
    run: Runtime, outcomes: list[Outcome], dbt_project: str | None, full_check: bool, full_refresh: bool
) -> SyncPlan:
    """What the warehouse needs after these outcomes: nothing, a load, and/or a dbt build, with the reasons."""
    settings = run.settings
    missing = run.target == "dev" and not run.warehouse_path.exists()
    forced = (
        "warehouse file missing" if missing else "full check or refresh asked" if full_check or full_refresh else ""
    )
    return plan_sync(
        run.lake,
        outcomes,
        run.target,
        dbt_project,
        rescan=full_refresh or missing,
        build=settings.run_dbt_build and bool(forced),
        reason=forced,
    )


def sync_warehouse(
    run: Runtime, outcomes: list[Outcome], codes: list[str], full_check: bool = False, full_refresh: bool = False
) -> WarehouseSync:
    """Plan, then (unless idle) load the new snapshots and build dbt; the lake records what the warehouse has."""
    logger = get_run_logger()
    dbt_project = project_fingerprint(project_dir(PROJECT)) if run.settings.run_dbt_build else None
    plan = plan_warehouse_sync(run, outcomes, dbt_project, full_check, full_refresh)
    if plan.idle:
        logger.info(
            "Nothing changed: %d snapshot(s) confirmed unchanged; no load, no dbt, no warehouse connection",
            len(outcomes),
        )
        return WarehouseSync(plan)
    logger.info("Warehouse sync needed: %s", "; ".join(plan.reasons))
    settings, sync = run.settings, WarehouseSync(plan)
    local = run.target == "dev"
    with home_lock(run.home_dir, timeout_s=settings.lock_timeout_s, what=PROJECT) if local else nullcontext():
        sync.loaded = _load(run, plan, codes, sorted({int(o.season) for o in outcomes if o.season.isdigit()}))
        if settings.run_dbt_build and plan.build:
            if local:
                raw_tables = duckdb_table_keys(run.warehouse_path)
            else:
                raw_tables = snowflake_table_keys(run.dbt_env.get("SNOWFLAKE_DATABASE", ""), SnowflakeLayout().schema)
            sync.dbt_summary = run_dbt(
                PROJECT,
                run.target,
                run.dbt_env,
                args=dbt_build_args(settings.dbt_select, full_check, full_refresh),
                work_dir=run.dbt_work_dir,
                source_keys=dbt_source_keys(raw_tables),
            )
        mark_synced(run.lake, plan, dbt_project if sync.dbt_summary is not None else None)
    return sync


def _load(run: Runtime, plan: SyncPlan, codes: list[str], seasons: list[int]) -> dict[str, int]:
    keys = None if plan.rescan else plan.keys
    if run.target == "dev":
        return load_raw_duckdb(run.lake, run.warehouse_path, keys, plan.snapshots)
    settings = run.settings
    return copy_into_raw(
        settings.snowflake_block,
        settings.storage_integration,
        codes,
        seasons,
        stage=settings.snowflake_stage_url or stage_url(run.lake),
        layout=SnowflakeLayout(),
        keys=keys,
        snapshots=plan.snapshots,
    )
