"""A run whose process dies is Crashed and alerted in minutes; a Prefect API outage mid-run is ridden out.

On the test session's real ``prefect server start`` (proactive triggers evaluated every second), with
what docs/deploy.md tells an operator to run: ``python -m flows.serve --sample``, ``python -m blocks
register --only alerts`` (webhook on loopback) and ``python -m automations apply`` with its defaults,
so the crash automation is the one production gets (30 s heartbeats; Prefect's minimum is 30 s).

Two scenarios run at the same time, so the test waits once for both:

- **Dead run.** A served insightflow-daily run is Running (a slow source holds it there) when its
  serve process group is killed with SIGKILL: what an ECS task killed for memory or a lost node looks
  like; nothing is left to report a final state. Expected: Crashed, then the failure alert naming the
  run, within 3 minutes of the kill; the next run of the deployment (concurrency limit 1, ENQUEUE)
  starts at once on a new serve process, never AwaitingConcurrencySlot. That process serves with
  flow retries 3 s apart, and a run whose first attempt meets a source outage longer than its HTTP
  retries is retried, completes, and sends no failure alert (Prefect's retry rule turns the Failed
  proposal into AwaitingRetry, so no Failed event is emitted).
- **API outage.** A command-line run (``python flows/insightflow.py --sample``) talks to the server
  through a loopback TCP proxy (tests/support/outage_proxy.py) that refuses every connection for
  ``OUTAGE_S`` seconds mid-run and cuts the open ones. Expected: the run ends Completed, every task run
  Completed, its log lines and artifacts recorded, and the crash automation leaves it alone.

Figures are printed (docs/operations.md quotes them).
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

# Imported here, not in the outage thread: two threads importing Prefect at once deadlock on its modules.
from prefect.client.orchestration import get_client  # noqa: F401
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterDeploymentId,
    FlowRunFilterStartTime,
    LogFilter,
    LogFilterFlowRunId,
    TaskRunFilter,
    TaskRunFilterFlowRunId,
)

from tasks.insightflow.contracts import DATASETS
from tests.deploy.test_prefect_yaml import client_for, run_deployment, server_python
from tests.flows.test_serve import wait_for_deployments, wait_for_terminal
from tests.support.deploy import E2EServer, Processes
from tests.support.outage_proxy import OutageProxy

OUTAGE_S = 120
CRASH_DEADLINE_S = 180
DAILY = "insightflow/insightflow-daily"

pytestmark = [pytest.mark.deploy, pytest.mark.e2e, pytest.mark.timeout(720)]


@pytest.fixture(scope="module")
def dead_runs_server(prefect_server, tmp_path_factory) -> Iterator[E2EServer]:
    """The session's server (no second server start); every automation made here is deleted after."""
    home = tmp_path_factory.mktemp("dead-runs")
    server = E2EServer(prefect_server, prefect_server.removesuffix("/api"), home, Processes(home))
    try:
        yield server
    finally:
        server.processes.stop_all()
        with client_for(server) as client:
            for automation in client.read_automations():
                if automation.name.startswith("insightflow-"):
                    client.delete_automation(automation.id)


def alerts_naming(receiver, run_name: str) -> list[dict]:
    return [m for m in receiver.distinct() if run_name in m.get("subject", "") + m.get("body", "")]


def wait_for_state(server, run_id, types: set[str], timeout: float):
    deadline = time.monotonic() + timeout
    with client_for(server) as client:
        while True:
            run = client.read_flow_run(run_id)
            if run.state and run.state.type.value in types:
                return run
            if time.monotonic() > deadline:
                raise AssertionError(f"run {run.name} still {run.state.name if run.state else None} after {timeout} s")
            time.sleep(0.5)


def state_names(server, run_id) -> list[str]:
    with client_for(server) as client:
        return [s.name for s in sorted(client.read_flow_run_states(run_id), key=lambda s: s.timestamp)]


def wait_for_serving(server: E2EServer, name: str, proc, timeout: float) -> None:
    """Until the serve process ``name`` has registered its deployments and is about to poll for runs."""
    deadline = time.monotonic() + timeout
    while "Serving 3 deployments" not in server.processes.log(name):
        assert proc.poll() is None, server.processes.log(name)[-4000:]
        assert time.monotonic() < deadline, f"{name} not serving after {timeout} s"
        time.sleep(0.5)
    time.sleep(3)  # the runner starts polling right after printing


def process_group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def ride_out_an_api_outage(server: E2EServer, home) -> dict[str, float]:
    """A sample run through a proxy that refuses connections for OUTAGE_S seconds once the run is under way."""
    port = int(server.api_url.rsplit(":", 1)[1].split("/")[0])
    proxy = OutageProxy(port)
    proxy.up()
    # The command-line run's own client settings (no PREFECT_CLIENT_* here: tasks/core/console.py sets
    # them). The dbt build and report come after the landing, so the outage hits work still to do.
    env = server.env(PREFECT_API_URL=proxy.api_url)
    args = [sys.executable, "flows/insightflow.py", "--sample", "--home", str(home), "--fast-dbt"]
    since = datetime.now(UTC)
    started = time.monotonic()
    proc = server.processes.start("outage-run", args, env)
    cli_runs = FlowRunFilter(
        deployment_id=FlowRunFilterDeploymentId(is_null_=True), start_time=FlowRunFilterStartTime(after_=since)
    )
    try:
        deadline = time.monotonic() + 180
        with client_for(server) as client:
            while not (runs := client.read_flow_runs(flow_run_filter=cli_runs)):
                assert time.monotonic() < deadline and proc.poll() is None, server.processes.log("outage-run")[-4000:]
                time.sleep(0.2)
            run_id = runs[0].id
            of_run = TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=[run_id]))
            while not client.read_task_runs(task_run_filter=of_run):  # under way: its first task runs
                assert time.monotonic() < deadline and proc.poll() is None, server.processes.log("outage-run")[-4000:]
                time.sleep(0.2)
        proxy.down()
        time.sleep(OUTAGE_S)
        proxy.up()
        assert proc.wait(timeout=600) == 0, server.processes.log("outage-run")[-4000:]
    finally:
        proxy.close()
    ended = time.monotonic()
    down_at, up_at = proxy.outages[0]
    with client_for(server) as client:
        run = client.read_flow_run(run_id)
        tasks = client.read_task_runs(task_run_filter=of_run)
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])), limit=200)
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
        )
    output = server.processes.log("outage-run")
    assert "InsightFlow run complete." in output, output[-3000:]
    assert run.state.type.value == "COMPLETED", run.state
    assert "Crashed" not in state_names(server, run_id), "the crash automation took the outage for a death"
    # Every stage of the pipeline has its task run, each Completed (Prefect records task runs from
    # events: a dropped event leaves a task run missing or stuck Running).
    expected = [f"{stage}-{d}" for d in DATASETS for stage in ("fetch", "validate", "land")]
    expected += ["dbt-build", "dbt-source-freshness", "check-freshness", "insightflow-report"]
    recorded = {t.name: t.state.type.value for t in tasks}
    missing = [e for e in expected if not any(n == e or n.startswith(f"{e}-") for n in recorded)]
    assert not missing, f"task runs not recorded: {missing}; recorded: {recorded}"
    assert set(recorded.values()) == {"COMPLETED"}, recorded
    assert {"insightflow-datasets", "insightflow-dbt", "insightflow-freshness", "insightflow-report"} <= {
        a.key for a in artifacts
    }, [a.key for a in artifacts]
    # Every run and task log line the process printed reached the server.
    printed = re.findall(r"^\d\d:\d\d:\d\d\.\d+ \| \w+\s*\| (?:Flow|Task) run '[^']+' - (.+)$", output, re.M)
    printed = [line for line in printed if not line.startswith("View at ")]  # Prefect keeps it off the API
    stored = [log.message for log in logs]
    lost = [line for line in printed if not any(m.startswith(line[:80]) for m in stored)]
    assert printed and not lost, f"{len(lost)} of {len(printed)} log lines lost: {lost[:5]}"
    return {
        "outage": up_at - down_at,
        "outage run, start to exit": ended - started,
        "outage run, task runs": float(len(tasks)),
        "outage run, log lines": float(len(logs)),
    }


def test_a_killed_run_is_crashed_and_alerted_and_frees_its_slot_while_an_api_outage_is_ridden_out(
    dead_runs_server, webhook_receiver, tmp_path
):
    server, processes = dead_runs_server, dead_runs_server.processes
    timings: dict[str, float] = {}
    started = time.monotonic()
    alert_env = server.env(INSIGHTFLOW_ALERT_WEBHOOK_URL=webhook_receiver.url)
    server_python(server, ["-m", "blocks", "register", "--only", "alerts"], alert_env)
    out = server_python(server, ["-m", "automations", "apply"], alert_env)
    assert re.search(r"^automation/insightflow-crash-unresponsive-runs: (created|unchanged)$", out, re.M), out

    with ThreadPoolExecutor(1) as pool:
        outage = pool.submit(ride_out_an_api_outage, server, tmp_path / "outage-home")

        # 1. A served run, Running on a slow source, killed with its whole process group.
        # The slow source must not time out (it answers after 15 minutes); runs are picked up every 2 s.
        serve_env = server.env(
            INSIGHTFLOW_HOME=str(tmp_path / "served"), INSIGHTFLOW_HTTP_TIMEOUT="900", PREFECT_RUNNER_POLL_FREQUENCY="2"
        )
        first = processes.start("serve-1", [sys.executable, "-m", "flows.serve", "--sample"], serve_env)
        wait_for_deployments(server, first, timeout=180)
        # A run's settings replace the served deployment's whole, so each repeats sample.
        params = {"datasets": ["iowrt"]}
        quick = {"sample": True, "run_dbt": False}
        doomed_id = run_deployment(server, DAILY, settings={**quick, "sample_faults": {"iowrt": "slow:900"}}, **params)
        doomed = wait_for_state(server, doomed_id, {"RUNNING"}, timeout=120)
        time.sleep(5)  # the run's first heartbeat goes out as it starts
        os.killpg(first.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        first.wait(timeout=30)
        deadline = time.monotonic() + 15  # the kernel tears the group's processes down one by one
        while not (process_group_gone(first.pid) or _only_zombies(first.pid)):
            assert time.monotonic() < deadline, f"the flow's process survived the kill: {_group(first.pid)}"
            time.sleep(0.2)

        # A new serve process (the next ECS task) with flow retries 3 s apart, ready while we wait.
        retry_env = {**serve_env, "INSIGHTFLOW_FLOW_RETRY_DELAY_S": "3"}
        second = processes.start("serve-2", [sys.executable, "-m", "flows.serve", "--sample"], retry_env)

        crashed = wait_for_state(server, doomed_id, {"CRASHED", "COMPLETED", "FAILED", "CANCELLED"}, CRASH_DEADLINE_S)
        timings["kill to Crashed"] = time.monotonic() - killed_at
        assert crashed.state.type.value == "CRASHED", crashed.state
        assert "No heartbeat for" in crashed.state.message, crashed.state.message
        deadline = killed_at + CRASH_DEADLINE_S
        while not alerts_naming(webhook_receiver, doomed.name) and time.monotonic() < deadline:
            time.sleep(0.2)
        timings["kill to failure alert"] = time.monotonic() - killed_at
        (alert,) = alerts_naming(webhook_receiver, doomed.name)
        assert alert["subject"] == f"InsightFlow: insightflow-daily run {doomed.name} Crashed", alert
        assert "No heartbeat for" in alert["body"] and "docs/operations.md#crashed-run" in alert["body"], alert

        # 2. The next run starts at once: the dead run's concurrency slot is free.
        wait_for_serving(server, "serve-2", second, timeout=180)
        created = time.monotonic()
        next_id = run_deployment(server, DAILY, settings=quick, **params)
        wait_for_state(server, next_id, {"RUNNING", "COMPLETED", "FAILED", "CRASHED"}, timeout=60)
        timings["next run, created to Running"] = time.monotonic() - created
        (next_run,) = wait_for_terminal(server, [next_id], timeout=180)
        assert next_run.state.type.value == "COMPLETED", next_run.state
        assert "AwaitingConcurrencySlot" not in state_names(server, next_id), state_names(server, next_id)
        # The slot is taken when the run enters Pending: from its creation that is one runner poll.
        with client_for(server) as client:
            history = sorted(client.read_flow_run_states(next_id), key=lambda s: s.timestamp)
        slot = next(s.timestamp for s in history if s.name == "Pending") - history[0].timestamp
        timings["next run, created to Pending (slot taken)"] = slot.total_seconds()

        # 3. A source outage longer than one attempt's HTTP retries: retried, Completed, no alert.
        from tasks.core.http import RetryPolicy

        outage_requests = RetryPolicy.from_env().attempts + 2
        retried_id = run_deployment(
            server, DAILY, settings={**quick, "sample_faults": {"iowrt": f"5xx:{outage_requests}"}}, **params
        )
        (retried,) = wait_for_terminal(server, [retried_id], timeout=180)
        assert retried.state.type.value == "COMPLETED", retried.state
        assert retried.run_count == 2 and "AwaitingRetry" in state_names(server, retried_id)
        time.sleep(5)  # an alert would come within a second or two of the event (see the Crashed one)
        assert not alerts_naming(webhook_receiver, retried.name), webhook_receiver.messages

        timings.update(outage.result(timeout=600))
    assert len(webhook_receiver.distinct()) == 1, [m["subject"] for m in webhook_receiver.distinct()]
    timings["test total"] = time.monotonic() - started
    print("\ndead runs and API outage (s): " + ", ".join(f"{k}: {v:.1f}" for k, v in timings.items()))
    assert timings["kill to failure alert"] < CRASH_DEADLINE_S
    assert timings["next run, created to Pending (slot taken)"] < 20  # a runner poll (2 s here), no slot wait


def _group(pgid: int) -> list[str]:
    import pathlib

    found = []
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid:
            found.append(text[:120])
    return found


def _only_zombies(pgid: int) -> bool:
    """Whether every process left in group ``pgid`` has exited (a zombie awaiting its parent's wait)."""
    import pathlib

    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return False
    return True
