"""``python -m flows.serve``: the deployments of prefect.yaml served locally, checked against the file.

The fast tests build the served deployments in-process. The end-to-end test does what docs/deploy.md
section 7 tells a user to do, on a throwaway server: start ``python -m flows.serve --sample``, apply the
failure alerts with ``python -m automations apply`` (webhook on loopback), run both deployments with
``prefect deployment run``, run a failing one, and stop the process with SIGINT. Expected values come
from prefect.yaml read here with PyYAML, not from flows/serve.py.
"""

from __future__ import annotations

import itertools
import os
import signal
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from tests.deploy.test_prefect_yaml import client_for, run_deployment, server_python
from tests.support.deploy import REPO_ROOT

pytestmark = pytest.mark.deploy

DEPLOYMENTS = {
    "insightflow-daily": "insightflow",
    "football-standings": "football",
    "football-full-check": "football",
}
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def declared() -> dict[str, dict]:
    return {d["name"]: d for d in yaml.safe_load((REPO_ROOT / "prefect.yaml").read_text())["deployments"]}


# ---------------------------------------------------------------- in-process


def test_env_placeholders_take_the_variable_or_local_and_other_templates_are_refused(monkeypatch):
    from flows.serve import resolve_local

    monkeypatch.setenv("DEPLOY_ENV", "laptop")
    monkeypatch.delenv("UNSET_FOR_TEST", raising=False)
    assert resolve_local(["insightflow", "{{ $DEPLOY_ENV }}"], "d.tags") == ["insightflow", "laptop"]
    assert resolve_local("env {{ $UNSET_FOR_TEST }}", "d.description") == "env local"
    assert resolve_local({"n": 3, "ok": True}, "d.parameters") == {"n": 3, "ok": True}
    for template in ("{{ prefect.variables.run_mode }}", "{{ build-image.image }}", "{{ prefect.blocks.secret.x }}"):
        with pytest.raises(ValueError, match=r"prefect.yaml d.parameters.mode: .* cannot be resolved"):
            resolve_local({"mode": template}, "d.parameters")


def test_schedule_items_become_prefect_schedules():
    from flows.serve import to_schedule

    cron = to_schedule({"cron": "0 5 * * *", "timezone": "UTC"})
    assert (cron.cron, cron.timezone, cron.interval) == ("0 5 * * *", "UTC", None)
    interval = to_schedule({"interval": 300, "timezone": "UTC", "active": False})
    assert (interval.interval, interval.active) == (timedelta(minutes=5), False)


@pytest.mark.parametrize("sample", [False, True])
def test_served_deployments_copy_prefect_yaml_and_change_only_the_target(sample):
    from flows.serve import local_deployment, read_deployments

    served = {d.name: d for d in (local_deployment(spec, sample=sample) for spec in read_deployments())}
    assert sorted(served) == sorted(declared()) == sorted(DEPLOYMENTS)
    for name, spec in declared().items():
        deployment = served[name]
        assert deployment.flow_name == DEPLOYMENTS[name]
        assert deployment.entrypoint == spec["entrypoint"]
        assert deployment.description == spec["description"] and deployment.tags == spec["tags"]
        (schedule,) = deployment.schedules
        (item,) = spec["schedules"]
        if "cron" in item:
            assert (schedule.schedule.cron, schedule.schedule.timezone) == (item["cron"], item["timezone"])
        else:
            assert schedule.schedule.interval == timedelta(seconds=item["interval"])
            assert schedule.schedule.timezone == item["timezone"]
        assert deployment.concurrency_limit == spec["concurrency_limit"]["limit"]
        assert (
            deployment.concurrency_options.collision_strategy.value == spec["concurrency_limit"]["collision_strategy"]
        )
        expected = {**spec["parameters"], "target": "dev"} | ({"settings": {"sample": True}} if sample else {})
        assert deployment.parameters == expected
        assert not deployment.work_pool_name


def test_without_an_api_url_it_says_a_server_is_needed_in_one_line(tmp_path):
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(tmp_path), DO_NOT_TRACK="1")
    result = subprocess.run(
        [sys.executable, "-m", "flows.serve"], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "python -m flows.serve needs a Prefect server: start one with `prefect server start` and set "
        "PREFECT_API_URL=http://127.0.0.1:4200/api"
    ]


# ---------------------------------------------------------------- end to end


def wait_for_deployments(server, serve, timeout: float) -> dict:
    """The deployments as *this* serve process registered them: upserted after it started, schedules active.

    The session's server outlives each test, so a deployment can already exist, paused by an earlier
    serve's clean stop (tests/flows/test_serve.py) or left by a killed one; existing alone proves nothing.
    Every upsert stamps ``updated`` (prefect.server.models.deployments), and serve resumes the schedules.
    """
    from prefect.exceptions import ObjectNotFound

    started = serve.started_at - timedelta(seconds=1)  # Processes.start stamps it; the server shares this clock
    name = next(n for n, p in server.processes.procs if p is serve)
    deadline = time.monotonic() + timeout
    seen: dict = {}
    with client_for(server) as client:
        while True:
            if serve.poll() is not None:
                raise AssertionError(f"flows.serve exited ({serve.returncode}):\n{server.processes.log(name)[-4000:]}")
            try:
                seen = {n: client.read_deployment_by_name(f"{f}/{n}") for n, f in DEPLOYMENTS.items()}
            except ObjectNotFound:
                pass
            else:
                if all(d.updated >= started and d.paused is False for d in seen.values()):
                    return seen
            if time.monotonic() > deadline:
                states = {n: (d.updated, d.paused) for n, d in seen.items()}
                raise AssertionError(
                    f"deployments not served within {timeout} s (updated, paused: {states}):\n"
                    f"{server.processes.log(name)[-4000:]}"
                )
            time.sleep(0.5)


def wait_for_terminal(server, run_ids, timeout: float) -> list:
    deadline = time.monotonic() + timeout
    with client_for(server) as client:
        while True:
            runs = [client.read_flow_run(r) for r in run_ids]
            if all(r.state and r.state.type.value in TERMINAL for r in runs):
                return runs
            if time.monotonic() > deadline:
                states = {r.name: r.state.name for r in runs}
                raise AssertionError(
                    f"runs not finished within {timeout} s: {states}\n{server.processes.log('serve')[-4000:]}"
                )
            time.sleep(0.5)


def scheduled_times(server, deployment_id, start: datetime, count: int = 3) -> list[datetime]:
    """Ask the server's scheduler for the next ``count`` runs after ``start`` (far ahead, never due here)."""
    import httpx

    body = {
        "start_time": start.isoformat(),
        "end_time": (start + timedelta(days=count + 1)).isoformat(),
        "min_runs": count,
        "max_runs": count,
    }
    response = httpx.post(f"{server.api_url}/deployments/{deployment_id}/schedule", json=body, timeout=30)
    assert response.status_code < 300, response.text
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterDeploymentId, FlowRunFilterExpectedStartTime

    with client_for(server) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                deployment_id=FlowRunFilterDeploymentId(any_=[deployment_id]),
                expected_start_time=FlowRunFilterExpectedStartTime(after_=start),
            )
        )
    return sorted(r.expected_start_time for r in runs)


@pytest.mark.e2e
def test_served_deployments_run_from_the_cli_alert_on_failure_and_stop_cleanly(e2e_server, webhook_receiver, tmp_path):
    server, processes = e2e_server, e2e_server.processes
    timings: dict[str, float] = {}
    started = time.monotonic()
    home = tmp_path / "insightflow-home"
    serve = processes.start(
        "serve", [sys.executable, "-m", "flows.serve", "--sample"], server.env(INSIGHTFLOW_HOME=str(home))
    )

    # The alert path with the commands users run, while the serve process starts.
    alert_env = server.env(INSIGHTFLOW_ALERT_WEBHOOK_URL=webhook_receiver.url)
    assert "custom-webhook/insightflow-alerts: created" in server_python(
        server, ["-m", "blocks", "register", "--only", "alerts"], alert_env
    )
    # Failure, missed-run and hung-run alerts per deployment, the two stale-data alerts, the crash automation.
    alerts = 3 * len(declared()) + 3
    assert server_python(server, ["-m", "automations", "apply"], alert_env).count(": created") == alerts

    served = wait_for_deployments(server, serve, timeout=120)
    timings["serve start to both deployments registered"] = time.monotonic() - started
    log = processes.log("serve")
    assert f"Dashboard: {server.ui_url}/deployments" in log, log
    assert "prefect deployment run insightflow/insightflow-daily" in log, log

    # As declared in prefect.yaml, on a process instead of a work pool, and on the local target.
    for name, spec in declared().items():
        deployment = served[name]
        assert deployment.description == spec["description"] and deployment.tags == spec["tags"]
        assert deployment.global_concurrency_limit.limit == spec["concurrency_limit"]["limit"]
        assert (
            deployment.concurrency_options.collision_strategy.value == spec["concurrency_limit"]["collision_strategy"]
        )
        assert deployment.parameters == {**spec["parameters"], "target": "dev", "settings": {"sample": True}}
        assert deployment.work_pool_name is None and deployment.paused is False
        (schedule,) = deployment.schedules
        assert schedule.active and schedule.schedule.timezone == spec["schedules"][0]["timezone"]
    assert served["insightflow-daily"].schedules[0].schedule.cron == "0 5 * * *"
    assert served["football-standings"].schedules[0].schedule.interval == timedelta(seconds=300)
    assert served["football-full-check"].schedules[0].schedule.cron == "30 3 * * *"
    assert served["football-full-check"].parameters["full_check"] is True

    # The server turns those schedules into runs at the declared times (a day ahead: none becomes due).
    tomorrow = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    daily = scheduled_times(server, served["insightflow-daily"].id, tomorrow)
    assert daily == [tomorrow + timedelta(days=d, hours=5) for d in range(3)], daily
    football = scheduled_times(server, served["football-standings"].id, tomorrow)
    assert len(football) == 3 and [b - a for a, b in itertools.pairwise(football)] == [timedelta(seconds=300)] * 2

    # Both deployments through the CLI. dbt runs as one call (settings.dbt_node_tasks=false) and football skips
    # it: the per-node tasks add ~30 s each and are covered by tests/flows/test_insightflow.py and tests/flows/test_football.py.
    # The failing run, started at once, waits for the daily slot (ENQUEUE, limit 1).
    t0 = time.monotonic()
    # A run's settings replace the deployment's whole, so each repeats sample.
    daily_id = run_deployment(
        server, "insightflow/insightflow-daily", settings={"sample": True, "dbt_node_tasks": False}
    )
    football_id = run_deployment(
        server, "football/football-standings", settings={"sample": True, "run_dbt_build": False}
    )
    failing_id = run_deployment(
        server,
        "insightflow/insightflow-daily",
        settings={"sample": True, "sample_faults": {"fuelprice": "html"}, "run_dbt": False},
    )
    daily_run, football_run, failing = wait_for_terminal(server, [daily_id, football_id, failing_id], timeout=240)
    timings["three runs, created to all done"] = time.monotonic() - t0
    assert daily_run.state.type.value == "COMPLETED", daily_run.state
    assert football_run.state.type.value == "COMPLETED", football_run.state
    assert failing.state.type.value == "FAILED", failing.state
    assert daily_run.end_time <= failing.start_time or failing.end_time <= daily_run.start_time, (
        "ENQUEUE let runs overlap"
    )
    assert (home / "warehouse.duckdb").exists(), "the runs did not use the serve process's INSIGHTFLOW_HOME"

    messages = webhook_receiver.wait_for(1, timeout=60)
    assert messages, server.alert_report(failing.id)
    timings["failing run end to alert"] = time.monotonic() - t0 - timings["three runs, created to all done"]
    assert len(webhook_receiver.distinct()) == 1, messages
    text = messages[0]["subject"] + "\n" + messages[0]["body"]
    assert "insightflow-daily" in text and failing.name in text and "fuelprice" in text, text

    # Stop by PID as Ctrl-C would: clean exit, schedules paused until the next start.
    before_stop = len(processes.log("serve"))
    os.kill(serve.pid, signal.SIGINT)
    assert serve.wait(timeout=60) == 0, processes.log("serve")[-4000:]
    shutdown_output = processes.log("serve")[before_stop:]
    assert "Traceback" not in shutdown_output and "Warning" not in shutdown_output, shutdown_output
    with client_for(server) as client:
        assert client.read_deployment_by_name("insightflow/insightflow-daily").paused is True
    timings["test total"] = time.monotonic() - started
    print("\nserve E2E timings (s): " + ", ".join(f"{k}: {v:.1f}" for k, v in timings.items()))
