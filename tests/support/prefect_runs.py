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


def asset_events(
    flow_run_id: UUID | str, timeout_s: float = 60.0, quiet_s: float = 2.0, expect: tuple[str, ...] = ()
) -> list[dict]:
    """Every ``prefect.asset.*`` event related to the flow run, read back through the client's events filter.

    The server persists events in batches, so this polls until every key in ``expect`` has an event
    and the count has held for ``quiet_s``.
    """
    from prefect.events.filters import EventFilter, EventNameFilter, EventOrder, EventRelatedFilter

    event_filter = EventFilter(
        event=EventNameFilter(prefix=["prefect.asset."]),
        related=EventRelatedFilter(id=[f"prefect.flow-run.{flow_run_id}"]),
        order=EventOrder.ASC,
    )
    deadline, seen, stable_since = time.monotonic() + timeout_s, -1, time.monotonic()
    while True:
        events: list[dict] = []
        with get_client(sync_client=True) as client:
            page = client.read_events(filter=event_filter, limit=50)  # the server's largest page
            while True:
                events.extend(e.model_dump(mode="json") for e in page.events)
                if not page.next_page:
                    break
                page = client.read_events_page(str(page.next_page))
        missing = set(expect) - {e["resource"]["prefect.resource.id"] for e in events}
        if len(events) != seen or missing:
            seen, stable_since = len(events), time.monotonic()
        elif time.monotonic() - stable_since >= quiet_s and (events or time.monotonic() > deadline - timeout_s / 2):
            return events
        if time.monotonic() > deadline:
            return events
        time.sleep(0.5)


def asset_graph(events: list[dict]) -> dict[str, set[str]]:
    """Materialized key → its upstream keys (related resources with role ``asset``), from succeeded events."""
    graph: dict[str, set[str]] = {}
    for event in events:
        if event["event"] != "prefect.asset.materialization.succeeded":
            continue
        upstream = {r["prefect.resource.id"] for r in event["related"] if r.get("prefect.resource.role") == "asset"}
        graph.setdefault(event["resource"]["prefect.resource.id"], set()).update(upstream)
    return graph


def reaches(graph: dict[str, set[str]], start: str, end: str) -> list[str] | None:
    """A path of keys from ``start`` down to ``end`` following upstream edges backwards, or None."""
    downstream: dict[str, set[str]] = {}
    for key, ups in graph.items():
        for up in ups:
            downstream.setdefault(up, set()).add(key)
    paths = [[start]]
    seen = {start}
    while paths:
        path = paths.pop(0)
        if path[-1] == end:
            return path
        for nxt in sorted(downstream.get(path[-1], ())):
            if nxt not in seen:
                seen.add(nxt)
                paths.append([*path, nxt])
    return None
