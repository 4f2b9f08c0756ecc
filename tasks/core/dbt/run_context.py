"""What the dbt node task runs hang off and are made of: the calling run, a node's record, its states.

Split from tasks/core/dbt/node_runs.py (the reporter that turns dbt's callbacks into task-run events).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from prefect.client.schemas.objects import StateType, TaskRun
from prefect.context import FlowRunContext, TagsContext, TaskRunContext
from prefect.events.schemas.events import Event
from prefect.states import State

STATE_MESSAGE_LIMIT = 10_000


@dataclass(frozen=True)
class RunRef:
    """The flow run (and, inside a task, the task run) that the node task runs belong to."""

    flow_run_id: uuid.UUID
    flow_run_name: str
    flow_id: uuid.UUID | None
    flow_name: str
    parent_task_run_id: uuid.UUID | None = None
    tags: tuple[str, ...] = ()


def current_run() -> RunRef | None:
    """The run that is calling dbt, or None outside any flow run (then no node task runs are made)."""
    flow_ctx = FlowRunContext.get()
    task_ctx = TaskRunContext.get()
    if flow_ctx is None or flow_ctx.flow_run is None:
        return None
    flow_run = flow_ctx.flow_run
    return RunRef(
        flow_run_id=flow_run.id,
        flow_run_name=flow_run.name,
        flow_id=flow_run.flow_id,
        flow_name=flow_ctx.flow.name if flow_ctx.flow else "<unknown>",
        parent_task_run_id=task_ctx.task_run.id if task_ctx and task_ctx.task_run else None,
        tags=tuple(sorted(TagsContext.get().current_tags or ())),
    )


@dataclass
class Node:
    """One dbt node's task run as the reporter tracks it."""

    task_run: TaskRun
    resource_type: str
    logger: logging.LoggerAdapter
    running_due: float  # time.monotonic() after which the Running state is worth showing
    last_event: Event | None = None
    finished: bool = False
    upstream: list[str] = field(default_factory=list)


def utc_now() -> datetime:
    return datetime.now(UTC)


def make_state(type_: StateType, name: str, timestamp: datetime, message: str = "") -> State:
    return State(type=type_, name=name, timestamp=timestamp, message=message[:STATE_MESSAGE_LIMIT] or None)
