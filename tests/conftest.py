"""Shared fixtures: one real Prefect server per test session, started on loopback.

Environment for the whole session is fixed here, before Prefect is imported anywhere, so that every
flow run, block save and artifact in the tests goes to this throwaway server and never to a user's
profile. Subdirectory conftests add the moto, fakesnow and fixture HTTP servers.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tasks.core.prefect_server import free_port  # imports no prefect: settings below apply first

REPO_ROOT = Path(__file__).resolve().parent.parent

# The stand-ins' fixtures, for every test that asks for them; each starts only when first requested.
pytest_plugins = ["tests.support.aws", "tests.support.football", "tests.support.deploy", "tests.support.hardening"]


_SESSION_DIR = Path(tempfile.mkdtemp(prefix="insightflow-tests-"))
_PREFECT_PORT = free_port()
_PREFECT_ENV = {
    "PREFECT_HOME": str(_SESSION_DIR / "prefect-home"),
    "PREFECT_API_URL": f"http://127.0.0.1:{_PREFECT_PORT}/api",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_UI_ENABLED": "false",
    "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{_SESSION_DIR}/prefect.db",
    "PREFECT_LOGGING_TO_API_BATCH_INTERVAL": "0.3",
    "PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    # Fast retries everywhere in tests; individual tests override where they measure waits.
    "INSIGHTFLOW_HTTP_BACKOFF_BASE": "0.05",
    "INSIGHTFLOW_HTTP_BACKOFF_CAP": "0.2",
    "INSIGHTFLOW_HTTP_TIMEOUT": "5",
    # No flow retries (ten minutes apart) in-process; tests/flows/test_insightflow_retries.py turns them on.
    "INSIGHTFLOW_FLOW_RETRIES": "0",
}
os.environ.update(_PREFECT_ENV)
for leaked in ("PREFECT_API_KEY", "INSIGHTFLOW_HOME", "FOOTBALL_DATA_TOKEN", "AWS_PROFILE"):
    os.environ.pop(leaked, None)


@pytest.fixture(scope="session")
def session_dir() -> Path:
    return _SESSION_DIR


@pytest.fixture(scope="session")
def prefect_server():
    """A real ``prefect server start`` on loopback for the session; yields its API URL."""
    from tasks.core.prefect_server import local_prefect_server

    # Proactive automations (missed and hung runs) are evaluated every second instead of every 5 s.
    extra = {"PREFECT_SERVER_EVENTS_PROACTIVE_GRANULARITY": "PT1S"}  # an ISO 8601 duration; "1" is refused
    # Its first start migrates a new database: 10-20 s on a quiet machine, over 180 s seen at load 18 with two
    # pytest workers starting theirs at once; waiting longer costs nothing when it is quick.
    with local_prefect_server(_SESSION_DIR / "server", port=_PREFECT_PORT, extra_env=extra, timeout_s=420) as server:
        yield server.api_url


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get("INSIGHTFLOW_KEEP_TEST_DIR") != "1":
        shutil.rmtree(_SESSION_DIR, ignore_errors=True)


# The longest test files, longest first, by a CI run's durations on 2 cores (seconds, setup + calls; every
# run prints its slowest tests). With `-n 2 --dist loadfile` a file is one unit of work, handed out in
# collection order (addopts has --no-loadscope-reorder: xdist's default order, by number of tests, put
# these one- to three-test files last, where one ran alone for minutes at the end). Started first, the
# short files fill the other worker.
LONGEST_FIRST = (
    "tests/flows/test_insightflow_prod_athena.py",  # 443
    "tests/deploy/test_prefect_yaml.py",  # ~400 over its tests
    "tests/deploy/test_container.py",  # 374
    "tests/deploy/iam/test_task_policy_athena.py",  # 340
    "tests/automations/test_dead_runs.py",  # 245
    "tests/flows/test_first_run.py",  # 178
    "tests/flows/test_reports_browser.py",  # 152 to set up
    "tests/tasks/core/test_aws_storms.py",  # ~140
    "tests/tasks/insightflow/ingest/test_land_crash_safety.py",  # 135
    "tests/deploy/test_postgres_server.py",  # 132
    "tests/flows/test_serve.py",  # 103
    "tests/automations/test_lateness_alerts.py",  # 82
    "tests/flows/test_insightflow_revisions.py",
    "tests/flows/test_insightflow_concurrency.py",
    "tests/flows/test_football_prod.py",
    "tests/automations/test_football_stale_alert.py",
    "tests/deploy/test_stack.py",
)


def pytest_collection_modifyitems(config, items):
    """Run the longest files first (the same order in every xdist worker, as xdist requires)."""
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    root = Path(config.rootpath)

    def key(item) -> int:
        return rank.get(Path(item.path).relative_to(root).as_posix(), len(rank))

    items.sort(key=key)  # stable: the order within a file, and of every other file, is kept
