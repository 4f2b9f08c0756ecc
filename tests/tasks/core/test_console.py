"""What the command-line console drops, and what it must always show."""

from __future__ import annotations

import logging

import pytest

from tasks.core.console import ConsoleNoiseFilter

pytestmark = pytest.mark.unit


def record(logger: str, level: int, message: str, **extra: str) -> logging.LogRecord:
    rec = logging.LogRecord(logger, level, __file__, 1, message, None, None)
    rec.__dict__.update(extra)
    return rec


@pytest.mark.parametrize(
    "rec",
    [
        record("prefect.task_runs", logging.INFO, "Finished in state Completed()"),
        record(
            "prefect.task_runs",
            logging.INFO,
            "1 of 141 START sql view model main.stg_iowrt ...... [RUN]",
            task_name="execute_dbt_node",
        ),
        record(
            "prefect.task_runs",
            logging.INFO,
            "1 of 141 OK created sql view model main.stg_iowrt ... [OK in 0.7s]",
            task_name="execute_dbt_node",
        ),
    ],
    ids=["task-completed", "dbt-node-start", "dbt-node-ok"],
)
def test_per_task_and_per_node_info_lines_stay_off_the_console(rec):
    assert ConsoleNoiseFilter().filter(rec) is False


@pytest.mark.parametrize(
    "rec",
    [
        record("prefect.task_runs", logging.INFO, "iowrt: fetched 6936 bytes in 0.03s", task_name="fetch-dataset"),
        record(
            "prefect.task_runs",
            logging.INFO,
            "Done. PASS=141 WARN=0 ERROR=0 SKIP=0 NO-OP=0 TOTAL=141",
            task_name="dbt-build",
        ),
        record("prefect.flow_runs", logging.INFO, "Finished in state Completed()"),
        record("prefect.task_runs", logging.ERROR, "Finished in state Failed('dataset fuelprice: ...')"),
        record(
            "prefect.task_runs",
            logging.ERROR,
            "Failure in test accepted_range_fct_retail_sales_monthly",
            task_name="execute_dbt_node",
        ),
        record("prefect.task_runs", logging.WARNING, "dbt: excluding models downstream of fuelprice"),
        record("prefect", logging.INFO, "Starting temporary server on http://127.0.0.1:8000"),
    ],
    ids=["stage-line", "dbt-summary", "flow-completed", "task-failed", "dbt-test-failure", "warning", "prefect"],
)
def test_stage_lines_the_flow_outcome_and_every_warning_or_error_reach_the_console(rec):
    assert ConsoleNoiseFilter().filter(rec) is True
