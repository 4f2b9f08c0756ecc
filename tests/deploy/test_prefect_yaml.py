"""End to end on loopback: the real prefect.yaml deployed to a throwaway server, run by a process worker.

Nothing in prefect.yaml is edited for the test. The ECS pool is swapped for a ``process`` pool with
``prefect deploy --name N --pool P`` (``--all`` would ignore ``--pool``), the parameters for the offline
sample with ``--params``, and the prefect-docker build/push steps run against a fake Docker engine
(tests/support/deploy.py). The worker runs the flows from this checkout: the pull step changes into
``INSIGHTFLOW_APP_DIR``, which the image sets to its own copy of the code.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import time
from contextlib import contextmanager
from uuid import UUID

import pytest
import yaml

from tests.support.deploy import PREFECT, REPO_ROOT

pytestmark = [pytest.mark.deploy, pytest.mark.e2e]

POOL = "e2e-process"
IMAGE_NAME = "127.0.0.1:5999/insightflow"
SAMPLE_DEV = {"target": "dev", "settings": {"sample": True}}
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


@contextmanager
def client_for(server):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: server.api_url}), get_client(sync_client=True) as client:
        yield client


def deploy_env(server, engine, **extra):
    return server.env(
        DOCKER_HOST=engine.url,
        INSIGHTFLOW_IMAGE_NAME=IMAGE_NAME,
        INSIGHTFLOW_IMAGE_TAG="e2e",
        **extra,
    )


def run_deployment(server, name: str, **params) -> UUID:
    """``prefect deployment run`` as a user would; returns the new flow run's id."""
    args = ["deployment", "run", name]
    for key, value in params.items():
        args += ["--param", f"{key}={json.dumps(value)}"]
    out = server.cli(*args).stdout
    match = re.search(r"UUID:\s*([0-9a-f-]{36})", out)
    assert match, out
    return UUID(match.group(1))


def wait_for_runs(server, run_ids, timeout: float, processes=None):
    deadline = time.monotonic() + timeout
    with client_for(server) as client:
        while True:
            runs = [client.read_flow_run(r) for r in run_ids]
            if all(r.state and r.state.type.value in TERMINAL for r in runs):
                return runs
            if time.monotonic() > deadline:
                states = {str(r.id): (r.state.type.value, r.state.name) for r in runs}
                worker_log = processes.log("worker")[-4000:] if processes else ""
                raise AssertionError(f"runs not finished within {timeout} s: {states}\n{worker_log}")
            time.sleep(0.5)


def test_deploy_refuses_to_run_without_the_image_name(e2e_server, fake_docker_engine):
    """The guard build step fails the deploy before anything is built or registered."""
    from prefect.exceptions import ObjectNotFound

    e2e_server.cli("work-pool", "create", "e2e-guard", "--type", "process")
    env = deploy_env(e2e_server, fake_docker_engine)
    del env["INSIGHTFLOW_IMAGE_NAME"]
    result = subprocess.run(
        [*PREFECT, "--no-prompt", "deploy", "--name", "insightflow-daily", "--pool", "e2e-guard"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode != 0
    assert "set INSIGHTFLOW_IMAGE_NAME" in result.stdout + result.stderr, result.stdout + result.stderr
    assert fake_docker_engine.builds == []
    with client_for(e2e_server) as client, pytest.raises(ObjectNotFound):
        client.read_deployment_by_name("insightflow/insightflow-daily")


def test_deploy_without_a_docker_engine_fails_with_one_line_pointing_at_serve(e2e_server):
    """No engine answers at DOCKER_HOST: one line on stderr, no traceback, nothing registered."""
    from prefect.exceptions import ObjectNotFound

    from tasks.core.prefect_server import free_port

    e2e_server.cli("work-pool", "create", "e2e-no-docker", "--type", "process")
    engine = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    env = e2e_server.env(DOCKER_HOST=engine, INSIGHTFLOW_IMAGE_NAME=IMAGE_NAME)
    result = subprocess.run(
        [*PREFECT, "--no-prompt", "deploy", "--name", "insightflow-daily", "--pool", "e2e-no-docker"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output and "An exception occurred" not in output, output
    (line,) = result.stderr.strip().splitlines()
    assert f"needs a Docker engine, but none answers at {engine}" in line, line
    assert "Connection refused" in line and "python -m flows.serve" in line, line
    assert "check_docker_engine" in result.stdout and "build_docker_image" not in result.stdout, result.stdout
    with client_for(e2e_server) as client, pytest.raises(ObjectNotFound):
        client.read_deployment_by_name("insightflow/insightflow-daily")


def test_deploy_all_registers_both_deployments_as_written(e2e_server, fake_docker_engine):
    """`prefect deploy --all` of the unedited file: ECS pool, schedules, concurrency, image from the build step."""
    pool = "insightflow-ecs"
    e2e_server.cli("work-pool", "create", pool, "--type", "ecs")
    builds_before = len(fake_docker_engine.builds)
    # prefect.toml names the default pool; without it, the setting users export does (see test_static).
    default_pool = {} if (REPO_ROOT / "prefect.toml").exists() else {"PREFECT_DEPLOYMENTS_DEFAULT_WORK_POOL_NAME": pool}
    env = deploy_env(e2e_server, fake_docker_engine, **default_pool)
    out = e2e_server.cli("--no-prompt", "deploy", "--all", env=env, timeout=240)
    assert "ignored" not in out.stdout, out.stdout

    assert len(fake_docker_engine.builds) > builds_before
    build = fake_docker_engine.builds[-1]
    assert build.dockerfile == "Dockerfile" and build.query.get("platform") == ["linux/amd64"]
    for needed in (
        "Dockerfile",
        "pyproject.toml",
        "flows/insightflow.py",
        "flows/football.py",
        "dbt/insightflow/dbt_project.yml",
    ):
        assert needed in build.files, f"{needed} missing from the build context"
    leaked = [
        f for f in build.files if f.startswith((".git/", ".venv/", "tests/", ".insightflow/")) or f.endswith(".duckdb")
    ]
    assert not leaked, f".dockerignore let local state into the build context: {leaked[:5]}"
    assert (IMAGE_NAME, "e2e") in fake_docker_engine.pushes
    with client_for(e2e_server) as client:
        daily = client.read_deployment_by_name("insightflow/insightflow-daily")
        football = client.read_deployment_by_name("football/football-standings")

    assert daily.work_pool_name == football.work_pool_name == pool
    assert [s.schedule.cron for s in daily.schedules] == ["0 5 * * *"]
    assert daily.schedules[0].schedule.timezone == "UTC"
    assert [s.schedule.interval.total_seconds() for s in football.schedules] == [300]
    for deployment, strategy in ((daily, "ENQUEUE"), (football, "CANCEL_NEW")):
        assert deployment.global_concurrency_limit is not None
        assert deployment.global_concurrency_limit.limit == 1
        assert deployment.concurrency_options.collision_strategy.value == strategy
        assert deployment.parameters == {"target": "prod"}
        assert deployment.job_variables["image"] == f"{IMAGE_NAME}:e2e"
        assert "insightflow" in deployment.tags and deployment.description
        assert deployment.pull_steps == [
            {"prefect.deployments.steps.set_working_directory": {"directory": "{{ $INSIGHTFLOW_APP_DIR }}"}}
        ]
    assert (daily.job_variables["cpu"], daily.job_variables["memory"]) == (1024, 4096)


def test_deployments_run_through_a_worker_and_failures_alert(
    e2e_server, fake_docker_engine, webhook_receiver, tmp_path
):
    server, processes = e2e_server, e2e_server.processes
    timings: dict[str, float] = {}
    started = time.monotonic()
    server.cli("work-pool", "create", POOL, "--type", "process")
    env = deploy_env(server, fake_docker_engine)
    deploys = [
        processes.start(
            f"deploy-{name}",
            [*PREFECT, "--no-prompt", "deploy", "--name", name, "--pool", POOL, "--params", json.dumps(SAMPLE_DEV)],
            env,
        )
        for name in ("insightflow-daily", "football-standings")
    ]
    for name, proc in zip(("insightflow-daily", "football-standings"), deploys, strict=True):
        assert proc.wait(timeout=300) == 0, processes.log(f"deploy-{name}")[-4000:]
    timings["deploy both"] = time.monotonic() - started

    # The alert path, with the commands users run; applying twice changes nothing.
    alert_env = server.env(INSIGHTFLOW_ALERT_WEBHOOK_URL=webhook_receiver.url)
    register = server_python(server, ["-m", "blocks", "register", "--only", "alerts"], alert_env)
    assert "custom-webhook/insightflow-alerts: created" in register, register
    first = server_python(server, ["-m", "automations", "apply"], alert_env)
    second = server_python(server, ["-m", "automations", "apply"], alert_env)
    # Failure, missed-run and hung-run alerts per deployment in prefect.yaml, plus the two stale-data alerts and the crash automation.
    alerts = 3 * len(yaml.safe_load((REPO_ROOT / "prefect.yaml").read_text())["deployments"]) + 3
    assert first.count(": created") == alerts, first
    assert second.count(": unchanged") == alerts and "created" not in second and "updated" not in second, second

    worker_env = server.env(
        INSIGHTFLOW_HOME=str(tmp_path / "insightflow-home"),
        INSIGHTFLOW_APP_DIR=str(REPO_ROOT),
        PREFECT_WORKER_QUERY_SECONDS="1",
        PREFECT_WORKER_PREFETCH_SECONDS="5",
    )
    processes.start("worker", [*PREFECT, "worker", "start", "--pool", POOL, "--type", "process"], worker_env)
    try:
        # One full run of each deployment, side by side: separate homes, so separate DuckDB files.
        t0 = time.monotonic()
        daily_id = run_deployment(
            server, "insightflow/insightflow-daily", settings={"sample": True, "home": str(tmp_path / "daily")}
        )
        football_id = run_deployment(
            server, "football/football-standings", settings={"sample": True, "home": str(tmp_path / "football")}
        )
        daily, football_run = wait_for_runs(server, [daily_id, football_id], timeout=240, processes=processes)
        timings["insightflow + football, created to both done"] = time.monotonic() - t0
        timings["insightflow run, start to end"] = (daily.end_time - daily.start_time).total_seconds()
        timings["football run, start to end"] = (football_run.end_time - football_run.start_time).total_seconds()
        assert daily.state.type.value == "COMPLETED", daily.state
        assert football_run.state.type.value == "COMPLETED", football_run.state
        with client_for(server) as client:
            from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

            for run in (daily, football_run):
                artifacts = client.read_artifacts(
                    artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]))
                )
                assert artifacts, f"no artifacts for {run.name}"
        assert webhook_receiver.messages == [], "a successful run must not alert"

        # Two runs of the same deployment started together (ingest only, to keep the test short):
        # ENQUEUE makes the second wait for the first. Then a run that fails, which must alert once.
        t0 = time.monotonic()
        # A run's settings replace the deployment's whole: sample is repeated.
        quick = {"sample": True, "run_dbt": False, "home": str(tmp_path / "pair")}
        pair = [run_deployment(server, "insightflow/insightflow-daily", settings=quick) for _ in range(2)]
        failing_id = run_deployment(
            server, "insightflow/insightflow-daily", settings={**quick, "sample_faults": {"fuelprice": "html"}}
        )
        runs = wait_for_runs(server, [*pair, failing_id], timeout=180, processes=processes)
        *pair_runs, failing = runs
        timings["pair + failing run (sequential via the slot)"] = time.monotonic() - t0
        assert [r.state.type.value for r in pair_runs] == ["COMPLETED", "COMPLETED"], [r.state for r in pair_runs]
        intervals = sorted((r.start_time, r.end_time) for r in runs)
        for (_, end), (next_start, _) in itertools.pairwise(intervals):
            assert end <= next_start, f"runs of one deployment overlapped: {intervals}"
        assert failing.state.type.value == "FAILED", failing.state

        messages = webhook_receiver.wait_for(1, timeout=60)
        assert messages, server.alert_report(failing.id)
        timings["failing run end to alert"] = (
            time.monotonic() - t0 - timings["pair + failing run (sequential via the slot)"]
        )
        time.sleep(2)  # a duplicate would arrive right behind the first
        assert len(webhook_receiver.distinct()) == 1, webhook_receiver.messages
        text = messages[0]["subject"] + "\n" + messages[0]["body"]
        print(f"\nalert received:\n{text}")
        assert "insightflow-daily" in text and "fuelprice" in text, text
        assert failing.name in text and "Failed" in text, text
        assert f"{server.ui_url}/runs/flow-run/{failing.id}" in text, text
    finally:
        timings["test total"] = time.monotonic() - started
        print("\nE2E timings (s): " + ", ".join(f"{k}: {v:.1f}" for k, v in timings.items()))


def server_python(server, args: list[str], env: dict[str, str]) -> str:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, *args], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout
