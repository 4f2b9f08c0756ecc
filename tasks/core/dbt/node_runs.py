"""Show every dbt model and test as its own Prefect task run, at close to the cost of plain dbt.

prefect-dbt's ``PrefectDbtRunner`` runs a real Prefect task per dbt node: each gets a thread, a task
engine and two rebuilds of Prefect's settings from the serialized run context (TOML files re-read
every time), all fed one by one from a single callback thread. On ``dbt/insightflow`` (141 nodes)
that made the flow 4.9x a plain ``dbt build``, most of it spent after dbt had finished (issue 11,
docs/performance.md). A dbt node is not Prefect work to orchestrate, only work to *show*, so this
module reports it the way Prefect's own task engine reports a task run: as ``prefect.task-run.*``
state events, which the server's task-run recorder writes as task runs in bulk. dbt's
``NodeStart``/``NodeFinished`` callbacks only put a tuple on a queue; one background thread turns
them into a Completed, Failed or Skipped event carrying dbt's start and end times and message,
preceded by a Running event only for a node still running after ``RUNNING_AFTER_S`` (most nodes
take a fraction of that, and each event costs the server CPU), plus, for models, the asset
materialization events prefect-dbt emitted (keys: tasks/core/dbt/assets.py; sources keyed as the
asset their pipeline loaded, never by their SQL). dbt keeps its own console output; only its
warnings and errors are copied to the run's logs, each to its node's task run. dbt never waits on
the Prefect API: events and logs leave through Prefect's own batching workers.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from prefect._internal.uuid7 import uuid7
from prefect.client.schemas.objects import StateType, TaskRun, TaskRunResult
from prefect.events import emit_event
from prefect.events.schemas.events import Event
from prefect.logging.loggers import task_run_logger
from prefect.states import State

from tasks.core.assets import Note, note
from tasks.core.dbt.assets import MATERIALIZED_TYPES, layer, node_asset
from tasks.core.dbt.run_context import Node, RunRef, make_state, utc_now

# dbt statuses that fail a node's task run, and those shown as Completed named "Skipped".
FAILED_STATUSES = frozenset({"error", "fail", "runtime error", "runtimeerr"})
SKIPPED_STATUSES = frozenset({"skipped"})
# dbt log levels copied to the run's logs. The info lines ("3 of 141 OK created sql view model
# main.stg_iowrt ... [OK in 0.12s]") say what the task run's state and duration already say; sent
# as well they cost the server ~0.8 s CPU per build of dbt/insightflow (docs/performance.md).
FORWARDED_LEVELS = {"warn": logging.WARNING, "error": logging.ERROR}
# A node shows as Running only once it has run this long; quicker ones get their final state alone
# (with their real start time), which halves the events the server records for a typical build.
RUNNING_AFTER_S = 1.0
ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")  # dbt colours its console lines; the UI shows them raw
CLOSE_TIMEOUT_S = 60.0


class NodeRunReporter:
    """A dbt callback that mirrors each executed node as a Prefect task run of ``run``.

    Use as ``dbtRunner(callbacks=[reporter])`` inside ``with reporter:``; leaving the block waits
    (up to ``CLOSE_TIMEOUT_S``) until every node's events are handed to Prefect's event worker and
    marks nodes dbt started but never finished as Crashed. Reporting never fails the build: its
    own errors are logged as warnings and kept (the first five) in ``errors``.
    """

    def __init__(
        self,
        run: RunRef,
        manifest_path: Path,
        parent_logger: logging.LoggerAdapter | logging.Logger,
        source_keys: Mapping[str, str] | None = None,
    ):
        self.run = run
        self.source_keys = dict(source_keys or {})
        self.manifest_path = manifest_path
        self.parent_logger = parent_logger
        self.invocation = uuid.uuid4().hex[:12]
        self.nodes: dict[str, Node] = {}
        self._manifest: dict[str, Any] | None = None
        self._queue: queue.SimpleQueue[tuple | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name="dbt-node-runs", daemon=True)
        self._related = [
            {
                "prefect.resource.id": f"prefect.flow-run.{run.flow_run_id}",
                "prefect.resource.role": "flow-run",
                "prefect.resource.name": run.flow_run_name,
            },
            *(
                [
                    {
                        "prefect.resource.id": f"prefect.flow.{run.flow_id}",
                        "prefect.resource.role": "flow",
                        "prefect.resource.name": run.flow_name,
                    }
                ]
                if run.flow_id
                else []
            ),
            *({"prefect.resource.id": f"prefect.tag.{t}", "prefect.resource.role": "tag"} for t in run.tags),
        ]
        self.errors: list[str] = []

    def __call__(self, event: Any) -> None:
        """dbt callback: copy what is needed out of the event and queue it; nothing else."""
        name = event.info.name
        if name == "NodeStart":
            info = event.data.node_info
            self._queue.put(("start", info.unique_id, info.node_name, info.resource_type, utc_now()))
        elif name == "NodeFinished":
            info = event.data.node_info
            result = event.data.run_result
            self._queue.put(
                ("finish", info.unique_id, result.status, result.message, float(result.execution_time), utc_now())
            )
        elif (level := FORWARDED_LEVELS.get(str(event.info.level))) is not None and event.info.msg:
            node_info = getattr(event.data, "node_info", None)
            self._queue.put(("log", node_info.unique_id if node_info is not None else "", level, event.info.msg))

    def __enter__(self) -> NodeRunReporter:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        self._queue.put(None)
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            self.parent_logger.warning(
                "dbt node task runs: reporter still busy after %.0fs; some nodes may show late", timeout_s
            )
            return
        for unique_id, node in self.nodes.items():
            if not node.finished:
                self._finish(unique_id, "crashed", "dbt stopped before this node finished", 0.0, utc_now())

    def _work(self) -> None:
        waiting: list[str] = []  # started nodes whose Running state is not shown yet, oldest first
        while True:
            timeout = None if not waiting else max(0.0, self.nodes[waiting[0]].running_due - time.monotonic())
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                item = ("tick",)
            if item is None:
                return
            try:
                kind, *args = item
                if kind == "start":
                    self._start(*args)
                    waiting.append(args[0])
                elif kind == "finish":
                    self._finish(*args)
                elif kind == "log":
                    self._log(*args)
                while waiting and (
                    self.nodes[waiting[0]].finished or self.nodes[waiting[0]].running_due <= time.monotonic()
                ):
                    self._show_running(self.nodes[waiting.pop(0)])
            except Exception as exc:  # never let reporting break or stall the dbt build
                if len(self.errors) < 5:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                    self.parent_logger.warning("dbt node task runs: could not report %s: %s", item, exc)

    def _manifest_nodes(self) -> dict[str, Any]:
        """target/manifest.json as plain JSON (dbt writes it after parsing, before the first node runs)."""
        if self._manifest is None:
            try:
                self._manifest = json.loads(self.manifest_path.read_text())
            except (OSError, ValueError) as exc:
                self.parent_logger.warning(
                    "dbt node task runs: no dependencies or assets, %s unreadable: %s", self.manifest_path, exc
                )
                self._manifest = {}
        return self._manifest

    def _manifest_entry(self, unique_id: str) -> dict[str, Any]:
        manifest = self._manifest_nodes()
        for section in ("nodes", "unit_tests", "sources"):
            if unique_id in (manifest.get(section) or {}):
                return manifest[section][unique_id]
        return {}

    def _start(self, unique_id: str, name: str, resource_type: str, at: datetime) -> None:
        upstream = list((self._manifest_entry(unique_id).get("depends_on") or {}).get("nodes") or [])
        inputs: dict[str, list[TaskRunResult]] = {}
        if self.run.parent_task_run_id:
            inputs["__parents__"] = [TaskRunResult(id=self.run.parent_task_run_id)]
        waits = [TaskRunResult(id=self.nodes[u].task_run.id) for u in upstream if u in self.nodes]
        if waits:
            inputs["wait_for"] = waits
        running = make_state(StateType.RUNNING, "Running", at)
        task_run = TaskRun(
            id=uuid7(),
            name=f"{resource_type.lower()} {name or unique_id}",
            flow_run_id=self.run.flow_run_id,
            task_key=unique_id,
            dynamic_key=self.invocation,
            tags=list(self.run.tags),
            task_inputs=inputs,
            expected_start_time=at,
            start_time=at,
            run_count=1,
            state=running,
            state_id=running.id,
            state_type=running.type,
            state_name=running.name,
        )
        logger = task_run_logger(task_run, flow_run=None, flow=None)
        logger.extra.update(flow_run_name=self.run.flow_run_name, flow_name=self.run.flow_name, task_name=task_run.name)
        self.nodes[unique_id] = Node(
            task_run=task_run,
            resource_type=resource_type.lower(),
            logger=logger,
            running_due=time.monotonic() + RUNNING_AFTER_S,
            upstream=upstream,
        )

    def _show_running(self, node: Node) -> None:
        if not node.finished:
            node.last_event = self._emit_state(node.task_run, None, node.task_run.state, None)

    def _finish(self, unique_id: str, status: str, message: str, seconds: float, at: datetime) -> None:
        node = self.nodes.get(unique_id)
        if node is None or node.finished:
            return
        status = status.lower()
        label = f"{node.resource_type} {node.task_run.name.split(' ', 1)[-1]} {status}"
        if status in FAILED_STATUSES:
            final = make_state(StateType.FAILED, "Failed", at, f"{label}: {message}")
        elif status == "crashed":
            final = make_state(StateType.CRASHED, "Crashed", at, message)
        elif status in SKIPPED_STATUSES:
            final = make_state(StateType.COMPLETED, "Skipped", at, message or "skipped by dbt: an upstream node failed")
        else:
            final = make_state(StateType.COMPLETED, "Completed", at, f"{status} in {seconds:.2f}s")
        previous = node.task_run.state
        task_run = node.task_run
        if final.timestamp <= previous.timestamp:  # a state must come after the one it follows
            final.timestamp = previous.timestamp + timedelta(microseconds=1)
        task_run.total_run_time = final.timestamp - previous.timestamp
        task_run.end_time = final.timestamp
        task_run.state, task_run.state_id = final, final.id
        task_run.state_type, task_run.state_name = final.type, final.name
        shown = node.last_event is not None  # else the final state is the first the server hears of it
        node.last_event = self._emit_state(task_run, previous if shown else None, final, node.last_event)
        node.finished = True
        if final.type == StateType.FAILED:
            node.logger.error(final.message)
        if node.resource_type in MATERIALIZED_TYPES and final.name != "Skipped":
            self._emit_assets(unique_id, node, final)

    def _log(self, unique_id: str, level: int, message: str) -> None:
        node = self.nodes.get(unique_id) if unique_id else None
        (node.logger if node else self.parent_logger).log(level, ANSI_COLOUR.sub("", message))

    def _emit_state(
        self, task_run: TaskRun, initial: State | None, validated: State, follows: Event | None
    ) -> Event | None:
        """The event Prefect's task engine emits on a state change (``emit_task_run_state_change_event``).

        Built here because the engine's helper takes the flow run from the calling thread's run
        context, which this thread does not have; the server's recorder reads it from ``related``.
        """

        def state_payload(state: State) -> dict[str, Any]:
            return {"type": state.type.value, "name": state.name, "message": state.message or "", "state_details": {}}

        return emit_event(
            id=validated.id,
            occurred=validated.timestamp,
            event=f"prefect.task-run.{validated.name}",
            payload={
                "intended": {"from": initial.type.value if initial else None, "to": validated.type.value},
                "initial_state": state_payload(initial) if initial else None,
                "validated_state": {**state_payload(validated), "data": None},
                "task_run": task_run.model_dump(
                    mode="json",
                    exclude_none=True,
                    exclude={
                        "id",
                        "created",
                        "updated",
                        "flow_run_id",
                        "state_id",
                        "state_type",
                        "state_name",
                        "state",
                        "estimated_start_time_delta",
                        "estimated_run_time",
                    },
                ),
            },
            resource={
                "prefect.resource.id": f"prefect.task-run.{task_run.id}",
                "prefect.resource.name": task_run.name,
                "prefect.run-count": str(task_run.run_count),
                "prefect.state-message": validated.message or "",
                "prefect.state-name": validated.name or "",
                "prefect.state-timestamp": validated.timestamp.isoformat(),
                "prefect.state-type": validated.type.value,
                "prefect.orchestration": "client",
            },
            related=self._related,
            follows=follows,
        )

    def _asset(self, entry: Mapping[str, Any]) -> dict[str, str] | None:
        adapter = (self._manifest_nodes().get("metadata") or {}).get("adapter_type")
        return node_asset(entry, adapter, self.source_keys)

    def _emit_assets(self, unique_id: str, node: Node, final: State) -> None:
        """The asset events prefect-dbt's ``MaterializingTask`` emitted, sources keyed as their pipeline says."""
        entry = self._manifest_entry(unique_id)
        if ((entry.get("config") or {}).get("meta") or {}).get("prefect", {}).get("enable_assets") is False:
            return
        asset = self._asset(entry)
        if asset is None:
            return
        upstream = [a for a in (self._asset(self._manifest_entry(u)) for u in node.upstream) if a]
        for resource in upstream:
            emit_event(event="prefect.asset.referenced", resource=resource, related=[])
        ok = final.type != StateType.FAILED
        note(
            self.run.flow_run_id,
            Note(
                key=asset["prefect.resource.id"],
                name=entry.get("name") or unique_id,
                layer=layer(entry),
                status="materialized" if ok else "failed",
                at=final.timestamp.isoformat(timespec="seconds"),
                upstream=[a["prefect.resource.id"] for a in upstream],
                detail="" if ok else (final.message or ""),
            ),
        )
        emit_event(
            event=f"prefect.asset.materialization.{'succeeded' if ok else 'failed'}",
            resource=asset,
            related=[
                *(
                    {"prefect.resource.id": a["prefect.resource.id"], "prefect.resource.role": "asset"}
                    for a in upstream
                ),
                {"prefect.resource.id": "dbt", "prefect.resource.role": "asset-materialized-by"},
                {
                    "prefect.resource.id": f"prefect.task-run.{node.task_run.id}",
                    "prefect.resource.role": "task-run",
                    "prefect.resource.name": node.task_run.name,
                },
                *self._related,
            ],
            payload={"status": final.name, "message": final.message or ""},
        )
