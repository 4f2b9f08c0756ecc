"""Reading a flow run's task runs back from the test Prefect server once its recorder has caught up.

Task runs reach the server as events that its task-run recorder writes shortly after the flow
returns, so a test polls until every task run it expects is there and in a final state.
"""

from __future__ import annotations

import time
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import TaskRun

PAGE = 200  # the server's maximum page of task runs


def read_task_runs(flow_run_id: UUID | str) -> list[TaskRun]:
    runs: list[TaskRun] = []
    with get_client(sync_client=True) as client:
        while True:
            page = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])), limit=PAGE, offset=len(runs)
            )
            runs.extend(page)
            if len(page) < PAGE:
                return runs


def settled_task_runs(flow_run_id: UUID | str, at_least: int, timeout_s: float = 90.0) -> list[TaskRun]:
    """The flow run's task runs once ``at_least`` of them are recorded and all are in a final state."""
    deadline = time.monotonic() + timeout_s
    while True:
        runs = read_task_runs(flow_run_id)
        if len(runs) >= at_least and all(r.state is not None and r.state.is_final() for r in runs):
            return runs
        if time.monotonic() > deadline:
            unfinished = sorted(r.name for r in runs if r.state is None or not r.state.is_final())
            raise AssertionError(
                f"flow run {flow_run_id}: {len(runs)} task runs recorded within {timeout_s:.0f}s "
                f"(expected at least {at_least}); not final: {unfinished[:10]}"
            )
        time.sleep(0.5)
