"""Run a flow from the command line so that a person can read the console and trust what it says.

``python flows/<flow>.py`` is the first thing a newcomer runs. Left to Prefect's defaults on a fresh
machine, the run printed tracebacks although it succeeded, and hundreds of lines. ``run_flow`` fixes
each cause where it starts, without changing what a deployment or a configured server does:

- **Settings for the temporary API** (no ``PREFECT_API_URL``: Prefect starts a local server for the
  run), applied as defaults in code so they hold from any directory and any explicit setting wins:

  - ``server.analytics_enabled = False``: the temporary server's telemetry heartbeat writes its session
    to SQLite in a read-then-write transaction that races the server's other startup writes
    (``database is locked``, with a traceback) and, offline, logs an ERROR that it could not send.
    It would report a server that lives for one run.
  - ``server.ephemeral.startup_timeout_seconds = 120``: a first start migrates a fresh SQLite database;
    measured 38 to 57 s on a loaded 2-core machine, past Prefect's 20 s, so the first run failed.
  - the task-run recorder writes in batches (``batch_size``, ``flush_interval``): with one SQLite
    transaction per event (the default) it was still ~26 s behind when a 300-task flow ended here,
    ~13 s with batches of 100.

- **The temporary API is not stopped with events in flight.** Task runs reach the server as events,
  recorded asynchronously; Prefect stops the temporary server at interpreter exit, and a recorder
  still flushing is cancelled (``CancelledError`` traceback) and the rest of the run's task runs are
  lost from its history. ``run_flow`` waits until every task run that logged its final state is
  recorded in that state, then lets Prefect stop the server.

- **A quiet console.** Every log still goes to the API (the UI shows each task's full log); the console
  handler drops two kinds of INFO record that made 776 lines: the engine's per-task
  ``Finished in state Completed()`` and prefect-dbt's per-node dbt lines. Levels alone cannot do this:
  both share the ``prefect.task_runs`` logger and level with the tasks' own one-line progress messages.
  Warnings and errors always reach the console.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from prefect import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, LogFilter, LogFilterFlowRunId
from prefect.logging.handlers import APILogWorker, PrefectConsoleHandler
from prefect.settings import get_current_settings, temporary_settings
from prefect.states import State
from prefect.utilities.urls import url_for

from tasks.core import orchestration
from tasks.core.dbt.runner import DBT_CONSOLE_LOG_LEVEL

TEMPORARY_API_DEFAULTS: dict[str, Any] = {
    "server.analytics_enabled": False,
    "server.ephemeral.startup_timeout_seconds": 120,
    "server.services.task_run_recorder.batch_size": 100,
    "server.services.task_run_recorder.read_batch_size": 100,
    "server.services.task_run_recorder.flush_interval": 1,
    # Heartbeats (crash detection) and API-outage retries, as everywhere a flow runs (unless set).
    "flows.heartbeat_frequency": orchestration.HEARTBEAT_SECONDS,
    "client.max_retries": orchestration.CLIENT_MAX_RETRIES,
    "client.retry_jitter_factor": orchestration.CLIENT_RETRY_JITTER_FACTOR,
}
# snowflake-connector's vendored requests warns at import that urllib3/chardet are newer than it has
# tested (Prefect imports every installed integration, prefect-snowflake included): nothing a person
# running InsightFlow can or should act on.
VENDORED_REQUESTS_WARNING = r"urllib3 \(.*\) or chardet .* doesn't match a supported version"
RECORD_TIMEOUT_S = 120.0
FINISHED = "Finished in state "
PAGE = 200


class ConsoleNoiseFilter(logging.Filter):
    """Drops, from the console only, per-task lines that a person cannot use; the API keeps them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return True
        if getattr(record, "task_name", None) == "execute_dbt_node":  # prefect-dbt's per-node dbt output
            return False
        return not (record.name.startswith("prefect.task_runs") and record.getMessage().startswith(FINISHED))


@dataclass
class CommandLineRun:
    """A finished flow run as the command line reports it."""

    state: State
    dashboard_url: str | None


def dashboard_url(flow_run_id: UUID) -> str | None:
    """The flow run's page in the Prefect UI, or None on the temporary API (it serves no UI)."""
    if get_current_settings().api.url is None:
        return None
    return url_for("flow-run", obj_id=flow_run_id)


@contextlib.contextmanager
def _quiet_console() -> Iterator[None]:
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, PrefectConsoleHandler)]
    noise = ConsoleNoiseFilter()
    for handler in handlers:
        handler.addFilter(noise)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(noise)


def _finished_task_runs(client: Any, flow_run_id: UUID) -> dict[UUID, str]:
    """Task runs of the flow run that logged ``Finished in state X``, mapped to X's name."""
    found: dict[UUID, str] = {}
    log_filter = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
    for offset in itertools.count(0, PAGE):
        page = client.read_logs(log_filter=log_filter, limit=PAGE, offset=offset)
        for log in page:
            if log.task_run_id and log.message.startswith(FINISHED):
                found[log.task_run_id] = log.message[len(FINISHED) :].split("(", 1)[0]
        if len(page) < PAGE:
            break
    return found


def _recorded_states(client: Any, flow_run_id: UUID) -> dict[UUID, str | None]:
    recorded: dict[UUID, str | None] = {}
    flow_runs = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
    for offset in itertools.count(0, PAGE):
        page = client.read_task_runs(flow_run_filter=flow_runs, limit=PAGE, offset=offset)
        recorded.update({run.id: run.state_name for run in page})
        if len(page) < PAGE:
            break
    return recorded


def wait_until_recorded(flow_run_id: UUID, timeout_s: float = RECORD_TIMEOUT_S) -> int:
    """Block until the API has recorded every task run of the flow run in its final state.

    Returns how many task runs were still unrecorded at the timeout (0 when all were recorded).
    """
    from prefect.events.worker import EventsWorker

    # Task-run states travel as events, logs in batches: send both now, so that the server has every
    # event to record and every final-state line to compare with.
    EventsWorker.drain_all(timeout=timeout_s, at_exit=False)
    APILogWorker.drain_all(timeout=timeout_s, at_exit=False)
    started = time.monotonic()
    announced = False
    with get_client(sync_client=True) as client:
        expected = _finished_task_runs(client, flow_run_id)
        while True:
            recorded = _recorded_states(client, flow_run_id)
            missing = [run_id for run_id, state in expected.items() if recorded.get(run_id) != state]
            if not missing:
                return 0
            waited = time.monotonic() - started
            if waited > timeout_s:
                print(
                    f"The temporary Prefect API had not recorded {len(missing)} of {len(expected)} task runs "
                    f"after {timeout_s:.0f} s; they will be missing from its history."
                )
                return len(missing)
            if not announced and waited > 2:
                print(f"Waiting for the temporary Prefect API to record {len(missing)} more task runs ...")
                announced = True
            time.sleep(0.5)


def run_flow(flow: Callable[..., Any], **parameters: Any) -> CommandLineRun:
    """Run ``flow`` for a person at a terminal; see the module docstring for what that changes."""
    warnings.filterwarnings("ignore", message=VENDORED_REQUESTS_WARNING)
    # dbt's own stdout (two lines per node) would drown the run's lines; its log file keeps them all.
    os.environ.setdefault(DBT_CONSOLE_LOG_LEVEL, "warn")
    # The temporary API is a subprocess that imports the integrations too: the same filter, by prefix.
    os.environ["PYTHONWARNINGS"] = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"), "ignore:urllib3 ("]))
    # Prefect's background workers (logs, events) read settings from the environment in their own threads.
    for name, value in orchestration.RUNTIME_ENV.items():
        os.environ.setdefault(name, value)
    with temporary_settings(set_defaults=TEMPORARY_API_DEFAULTS), _quiet_console():
        state = flow(**parameters, return_state=True)
        flow_run_id = state.state_details.flow_run_id
        if get_current_settings().api.url is None:
            wait_until_recorded(flow_run_id)
        return CommandLineRun(state=state, dashboard_url=dashboard_url(flow_run_id))


def exit_status(run: CommandLineRun, name: str, print_summary: Callable[[Any, str | None], None]) -> int:
    """A command-line run's exit status: on failure its cause (and dashboard) on stderr and 1; else the summary and 0."""
    if not run.state.is_completed():
        print(f"\n{name} run failed: {run.state.result(raise_on_failure=False)}", file=sys.stderr)
        if run.dashboard_url:
            print(f"Dashboard: {run.dashboard_url}", file=sys.stderr)
        return 1
    print_summary(run.state.result(), run.dashboard_url)
    return 0


def duckdb_query_example(warehouse: str, sql: str) -> str:
    """A one-line command a person can paste to query the local DuckDB warehouse (read-only, so a run may go on)."""
    return f"  python -c \"import duckdb; duckdb.connect('{warehouse}', read_only=True).sql('{sql}').show()\""
