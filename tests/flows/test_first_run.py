"""A newcomer's first run: ``python flows/<flow>.py --sample`` on a bare install, from a fresh directory.

Each flow runs as its own process, as the README's command does, from a directory outside the
repository with a fresh ``INSIGHTFLOW_HOME`` and ``PREFECT_HOME`` and none of the settings a developer
exports (no ``PREFECT_SERVER_ANALYTICS_ENABLED``, no ``DO_NOT_TRACK``). The test venv holds the test
extra, so ``tests/support/bare_install.py`` makes every module only a test dependency brings unimportable in the
child (``.ci/run`` does the real bare install). Once against the temporary API Prefect starts when
``PREFECT_API_URL`` is unset, once against the session's server. A successful run exits 0 and prints no
traceback, no ERROR line, the summary, and at most LINE_BUDGET lines.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from uuid import UUID

import pytest

from tests.support.bare_install import REPO_ROOT
from tests.support.prefect_runs import settled_task_runs

pytestmark = pytest.mark.integration

LINE_BUDGET = 150
FLOWS = {
    "insightflow": ("flows/insightflow.py", "InsightFlow run complete."),
    "football": ("flows/football.py", "Football run complete."),
}
ERROR_LINE = re.compile(r"^ERROR\b|\|\s*ERROR\s*\|")


def newcomer_env(prefect_home: Path, api_url: str | None) -> dict[str, str]:
    """The test process's environment without anything the project or its tests set up."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PREFECT_", "INSIGHTFLOW_", "FOOTBALL_DATA_")) and key != "DO_NOT_TRACK"
    }
    env["PREFECT_HOME"] = str(prefect_home)
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


def run_sample(flow: str, workdir: Path, api_url: str | None) -> subprocess.CompletedProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    script, _ = FLOWS[flow]
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "tests" / "support" / "bare_install.py"), str(REPO_ROOT / script), "--sample"],
        cwd=workdir,
        env=newcomer_env(workdir / "prefect-home", api_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=840,
    )


def run_logs(flow_run_id: UUID) -> list[tuple[UUID | None, str]]:
    """From the session server's API: (task run, message) for every log of the flow run."""
    from prefect import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    logs: list[tuple[UUID | None, str]] = []
    with get_client(sync_client=True) as client:
        while page := client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])), limit=200, offset=len(logs)
        ):
            logs += [(log.task_run_id, log.message) for log in page]
    return logs


def unrecorded_task_runs(prefect_db: Path) -> tuple[int, list[tuple[str, str]]]:
    """From the temporary API's own database: task runs that logged a final state, and those not recorded so."""
    with sqlite3.connect(prefect_db) as db:
        finished = dict(
            db.execute(
                "select task_run_id, substr(message, 19, instr(substr(message, 19), '(') - 1) from log "
                "where task_run_id is not null and message like 'Finished in state %'"
            ).fetchall()
        )
        recorded = dict(db.execute("select id, state_name from task_run").fetchall())
    return len(finished), [(run, state) for run, state in finished.items() if recorded.get(run) != state]


@pytest.mark.parametrize("api", ["temporary", "server"])
@pytest.mark.parametrize("flow", sorted(FLOWS))
def test_sample_run_from_a_bare_install_prints_a_short_clean_console(flow, api, request, tmp_path):
    api_url = request.getfixturevalue("prefect_server") if api == "server" else None
    done = run_sample(flow, tmp_path / "newcomer", api_url)
    out = done.stdout
    lines = out.splitlines()
    shown = f"--- console ({len(lines)} lines) ---\n{out}"

    assert done.returncode == 0, shown
    assert "Traceback" not in out, shown
    assert [line for line in lines if ERROR_LINE.search(line)] == [], shown
    assert FLOWS[flow][1] in out, shown
    assert f"Warehouse: {(tmp_path / 'newcomer' / '.insightflow' / 'warehouse.duckdb').resolve()}" in out, shown
    assert len(lines) <= LINE_BUDGET, shown
    if api == "server":
        url = re.search(
            rf"^Dashboard: {re.escape(api_url.removesuffix('/api'))}/runs/flow-run/([0-9a-f-]{{36}})$",
            out,
            re.MULTILINE,
        )
        assert url, shown
        # The console is quiet, the API is not: every dbt node is a task run in its final state, and
        # every pipeline task's final-state line, dropped from the console, is in the run's logs.
        flow_run_id = UUID(url.group(1))
        runs = settled_task_runs(flow_run_id, at_least=10)
        nodes = [r for r in runs if r.name.split(" ", 1)[0] in {"model", "test", "unit_test"}]
        assert nodes and all(r.state.is_completed() for r in nodes), [(r.name, r.state_name) for r in runs]
        logs = run_logs(flow_run_id)
        finished = {str(run) for run, message in logs if run and message.startswith("Finished in state Completed()")}
        assert {str(r.id) for r in runs if r not in nodes} <= finished
    else:
        assert "Dashboard:" not in out, shown
        finished, missing = unrecorded_task_runs(tmp_path / "newcomer" / "prefect-home" / "prefect.db")
        assert finished > 0 and missing == [], f"{len(missing)} of {finished} task runs not recorded\n{shown}"
