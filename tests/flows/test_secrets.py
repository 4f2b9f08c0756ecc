"""Canary secrets in the environment never reach a log line, an artifact or the lake.

Every flow run in this folder runs with the canaries set (conftest.canary_env), so this test reads
back everything the test Prefect server holds: the cold run with its dbt build, the concurrency
runs, and here a run whose dataset fails validation (its payload and error go to quarantine/).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.support import REPO_ROOT
from tests.support.hardening import CANARIES, flush_api_logs

pytestmark = pytest.mark.integration


def _all_logs(client) -> list[str]:
    out, offset = [], 0
    while True:
        page = client.read_logs(limit=200, offset=offset)
        out += [f"{log.name} {log.message}" for log in page]
        offset += len(page)
        if len(page) < 200:
            return out


def _all_artifacts(client) -> list[str]:
    out, offset = [], 0
    while True:
        page = client.read_artifacts(limit=200, offset=offset)
        out += [f"{a.key} {a.description} {a.data}" for a in page]
        offset += len(page)
        if len(page) < 200:
            return out


def _all_flow_run_parameters(client) -> list[str]:
    out, offset = [], 0
    while True:
        page = client.read_flow_runs(limit=200, offset=offset)
        out += [f"{r.name} {r.parameters} {r.state.message if r.state else ''}" for r in page]
        offset += len(page)
        if len(page) < 200:
            return out


def _leaks(texts: list[str]) -> list[str]:
    return [f"{name} in: {text[:200]}" for text in texts for name, canary in CANARIES.items() if canary in text]


def _file_leaks(root: Path) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and path.suffix != ".duckdb":
            data = path.read_bytes()
            found += [f"{name} in {path}" for name, canary in CANARIES.items() if canary.encode() in data]
    return found


def test_canary_secrets_never_reach_logs_artifacts_or_the_lake(cold_home, tmp_path):
    from prefect.client.orchestration import get_client

    from flows.insightflow import insightflow

    failing_home = tmp_path / "failing"
    state = insightflow(
        settings={
            "sample": True,
            "home": str(failing_home),
            "sample_faults": {"iowrt": "html", "fuelprice": "5xx"},
            "run_dbt": False,
        },
        return_state=True,
    )
    assert state.is_failed()
    assert list((failing_home / "lake" / "quarantine" / "iowrt").iterdir()), "the rejected payload was kept"
    flush_api_logs()
    with get_client(sync_client=True) as client:
        logs = _all_logs(client)
        artifacts = _all_artifacts(client)
        runs = _all_flow_run_parameters(client)
    assert len(logs) > 100 and artifacts and len(runs) >= 2, "nothing to inspect: are the runs on this server?"
    assert any("iowrt" in line and "HTML" in line for line in logs), "the failure's log lines were not read back"
    assert _leaks(logs) == []
    assert _leaks(artifacts) == []
    assert _leaks(runs) == []
    # Lakes, quarantine and the dbt work directories (manifests, run results, dbt logs).
    assert _file_leaks(cold_home["home"]) == []
    assert _file_leaks(failing_home) == []


@pytest.mark.skipif(
    not (REPO_ROOT / "flows" / "football.py").exists(),
    reason="flows/football.py is not in this checkout yet (a colleague is writing it); "
    'its secrets check runs once football(settings={"sample": True}) exists',
)
def test_football_flow_never_logs_the_api_token(canary_env, prefect_server, tmp_path):
    from prefect.client.orchestration import get_client

    spec = importlib.util.spec_from_file_location("football_flow", REPO_ROOT / "flows" / "football.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    state = module.football(settings={"sample": True, "home": str(tmp_path / "home")}, return_state=True)
    assert state.is_completed(), state.message
    flush_api_logs()
    with get_client(sync_client=True) as client:
        assert _leaks(_all_logs(client)) == []
        assert _leaks(_all_artifacts(client)) == []
        assert _leaks(_all_flow_run_parameters(client)) == []
    assert _file_leaks(tmp_path / "home") == []
