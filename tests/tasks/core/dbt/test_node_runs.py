"""NodeRunReporter on the real test server, fed dbt's own event objects, so each outcome is quick to reach.

The whole-flow tests (test_insightflow_flow.py) cover a real build; these cover what a build rarely
shows: a node dbt starts and never finishes, an erroring model, a missing manifest, no run at all.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from dbt.events.types import LogModelResult, NodeFinished, NodeStart
from dbt_common.events.base_types import msg_from_base_event
from prefect import flow, get_client, get_run_logger
from prefect.logging.handlers import APILogHandler

from tasks.core.dbt.node_runs import RUNNING_AFTER_S, NodeRunReporter
from tasks.core.dbt.run_context import current_run
from tests.support.prefect_runs import settled_task_runs

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_server")]


def _node(name: str, resource_type: str = "model") -> dict:
    return {"unique_id": f"{resource_type}.proj.{name}", "node_name": name, "resource_type": resource_type}


def _events() -> list:
    """dbt events in the order a build fires them; a number is a pause of that many seconds."""
    ok, broken, hung = _node("stg_ok"), _node("fct_broken"), _node("not_null_fct_broken_id", "test")
    slow = _node("fct_slow")
    return [
        msg_from_base_event(NodeStart(node_info=slow)),
        msg_from_base_event(NodeStart(node_info=ok)),
        msg_from_base_event(NodeStart(node_info=broken)),
        msg_from_base_event(
            LogModelResult(
                node_info=ok,
                description="sql view model main.stg_ok",
                status="OK",
                index=1,
                total=3,
                execution_time=0.25,
            )
        ),
        msg_from_base_event(
            NodeFinished(node_info=ok, run_result={"status": "success", "message": "OK", "execution_time": 0.25})
        ),
        msg_from_base_event(
            NodeFinished(
                node_info=broken,
                run_result={
                    "status": "error",
                    "message": "Binder Error: column sales_myr does not exist",
                    "execution_time": 0.1,
                },
            )
        ),
        RUNNING_AFTER_S + 1.0,
        msg_from_base_event(
            NodeFinished(
                node_info=slow,
                run_result={"status": "success", "message": "OK", "execution_time": RUNNING_AFTER_S + 1.0},
            )
        ),
        msg_from_base_event(NodeStart(node_info=hung)),
    ]


@flow(name="dbt-node-runs-probe")
def _report(manifest_path: str) -> list[str]:
    reporter = NodeRunReporter(current_run(), Path(manifest_path), get_run_logger())
    with reporter:
        for event in _events():
            if isinstance(event, float):
                time.sleep(event)
            else:
                reporter(event)
    return reporter.errors


def test_each_node_becomes_a_task_run_of_the_flow_with_dbts_outcome(tmp_path):
    state = _report(str(tmp_path / "no-manifest-here.json"), return_state=True)

    assert state.is_completed() and state.result() == []
    runs = {r.name: r for r in settled_task_runs(state.state_details.flow_run_id, at_least=3)}
    assert sorted(runs) == ["model fct_broken", "model fct_slow", "model stg_ok", "test not_null_fct_broken_id"]
    assert runs["model stg_ok"].state_name == "Completed"
    broken = runs["model fct_broken"].state
    assert broken.is_failed() and broken.message == (
        "model fct_broken error: Binder Error: column sales_myr does not exist"
    )
    hung = runs["test not_null_fct_broken_id"].state
    assert hung.is_crashed() and "dbt stopped before this node finished" in hung.message
    # called from the flow itself, not a task: the node runs hang off the flow run directly
    assert all(not r.task_inputs.get("__parents__") for r in runs.values())
    assert all(r.start_time <= r.end_time for r in runs.values())
    # only a node still running after RUNNING_AFTER_S was ever shown Running; each keeps its real span
    with get_client(sync_client=True) as client:
        history = {name: [s.name for s in client.read_task_run_states(r.id)] for name, r in runs.items()}
    assert history["model fct_slow"] == ["Running", "Completed"]
    assert history["model stg_ok"] == ["Completed"]
    slow = runs["model fct_slow"]
    assert (slow.end_time - slow.start_time).total_seconds() >= RUNNING_AFTER_S + 1
    APILogHandler().flush()  # the flow's last log lines may still be queued; send them before the server stops


def test_no_task_runs_are_reported_outside_a_flow_run():
    assert current_run() is None
