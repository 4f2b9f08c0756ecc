"""A production-style Prefect server on PostgreSQL: both flows and a failure alert, each alert sent once.

docs/deploy.md ("Self-hosted Prefect server") tells an operator to point ``prefect server start`` at
PostgreSQL with ``PREFECT_API_DATABASE_CONNECTION_URL=postgresql+asyncpg://…``. This test does that on
a throwaway cluster of Debian's PostgreSQL (tests/support/postgres.py; ``.ci/install-postgresql``
installs it in CI), then, as the README and docs/deploy.md say:

1. ``python flows/insightflow.py --sample`` and ``python flows/football.py --sample`` against it: both
   exit 0, and their runs are rows in PostgreSQL's ``flow_run`` table (read with psql, not the API);
   the server wrote no SQLite file;
2. ``python -m flows.serve --sample``, ``blocks register --only alerts``, ``automations apply``, then a
   deployment run whose source serves HTML: Failed, and the webhook gets its failure alert exactly
   once (every message counted, repeats included: on SQLite under load the same alert came twice).

Prints both flows' wall times; bench/server_database.py compares them with SQLite's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.deploy.test_prefect_yaml import client_for, run_deployment, server_python
from tests.flows.test_serve import wait_for_deployments, wait_for_terminal
from tests.support.deploy import REPO_ROOT, E2EServer, e2e_server_on
from tests.support.postgres import Cluster, find_bin_dir, postgres_bin_dir, postgres_cluster

pytestmark = [pytest.mark.deploy, pytest.mark.e2e, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def pg_server(tmp_path_factory) -> Iterator[tuple[Cluster, E2EServer]]:
    bin_dir = postgres_bin_dir(skip_without=True)
    with (
        postgres_cluster(bin_dir) as cluster,
        e2e_server_on(tmp_path_factory.mktemp("pg-server"), cluster.url) as server,
    ):
        yield cluster, server


def psql(cluster: Cluster, sql: str) -> str:
    connect = ["-h", "127.0.0.1", "-p", str(cluster.port), "-U", cluster.user, "-d", cluster.database]
    done = subprocess.run(
        [str(find_bin_dir() / "psql"), *connect, "-tAc", sql],
        env={**os.environ, "PGPASSWORD": cluster.password},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


def test_both_flows_and_one_failure_alert_on_postgresql(pg_server, webhook_receiver, tmp_path):
    cluster, server = pg_server
    assert not (server.home / "prefect.db").exists(), "the server must not have used SQLite"
    timings: dict[str, float] = {}

    # 1. Both flows as the README runs them, against the PostgreSQL-backed server.
    env = server.env(INSIGHTFLOW_HOME=str(tmp_path / "home"))
    for flow in ("insightflow", "football"):
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, f"flows/{flow}.py", "--sample"],
            env=env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        timings[f"{flow} --sample"] = time.monotonic() - started
        assert done.returncode == 0, f"{flow}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    rows = psql(cluster, "select f.name || ':' || r.state_type from flow_run r join flow f on f.id = r.flow_id")
    assert sorted(rows.splitlines()) == ["football:COMPLETED", "insightflow:COMPLETED"], rows
    task_runs = int(psql(cluster, "select count(*) from task_run"))
    assert task_runs > 20, task_runs  # every stage, dataset and dbt node recorded in PostgreSQL

    # 2. Served deployments, the project's alerts, one failing deployment run: one alert, once.
    serve_env = server.env(INSIGHTFLOW_HOME=str(tmp_path / "served-home"))
    serve = server.processes.start("serve", [sys.executable, "-m", "flows.serve", "--sample"], serve_env)
    alert_env = server.env(INSIGHTFLOW_ALERT_WEBHOOK_URL=webhook_receiver.url)
    server_python(server, ["-m", "blocks", "register", "--only", "alerts"], alert_env)
    wait_for_deployments(server, serve, timeout=180)
    server_python(server, ["-m", "automations", "apply"], alert_env)
    webhook_receiver.messages.clear()

    started = time.monotonic()
    run_id = run_deployment(
        server,
        "insightflow/insightflow-daily",
        datasets=["fuelprice"],
        # A run's settings replace the served deployment's whole (docs/deploy.md), so sample is repeated.
        settings={
            "sample": True,
            "run_dbt": False,
            "home": str(tmp_path / "failing-home"),
            "sample_faults": {"fuelprice": "html"},
        },
    )
    (run,) = wait_for_terminal(server, [run_id], timeout=300)
    assert run.state.type.value == "FAILED", run.state
    deadline = time.monotonic() + 60
    while not webhook_receiver.messages and time.monotonic() < deadline:
        time.sleep(0.2)
    timings["failing run created to alert"] = time.monotonic() - started
    time.sleep(10)  # a second delivery of the same event would follow within seconds
    about_run = [m for m in webhook_receiver.messages if run.name in m.get("subject", "")]
    assert len(about_run) == 1, webhook_receiver.messages
    (alert,) = about_run
    assert alert["subject"] == f"InsightFlow: insightflow-daily run {run.name} Failed"
    assert "fuelprice" in alert["body"] and str(run.id) in alert["body"]
    with client_for(server) as client:
        assert client.read_flow_run(run_id).state.type.value == "FAILED"
    assert not [m for m in webhook_receiver.messages if m not in about_run], webhook_receiver.messages

    print(
        f"\nPostgreSQL {cluster.version} server timings (s): "
        + ", ".join(f"{name}: {seconds:.1f}" for name, seconds in timings.items())
    )
