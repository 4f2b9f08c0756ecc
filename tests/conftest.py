"""Shared fixtures: one real Prefect server per test session, started on loopback.

Environment for the whole session is fixed here, before Prefect is imported anywhere, so that every
flow run, block save and artifact in the tests goes to this throwaway server and never to a user's
profile. Subdirectory conftests add the moto, fakesnow and fixture HTTP servers.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_SESSION_DIR = Path(tempfile.mkdtemp(prefix="insightflow-tests-"))
_PREFECT_PORT = free_port()
_PREFECT_ENV = {
    "PREFECT_HOME": str(_SESSION_DIR / "prefect-home"),
    "PREFECT_API_URL": f"http://127.0.0.1:{_PREFECT_PORT}/api",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_UI_ENABLED": "false",
    "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{_SESSION_DIR}/prefect.db",
    "PREFECT_LOGGING_TO_API_BATCH_INTERVAL": "0.3",
    "PREFECT_API_SERVICES_LATE_RUNS_ENABLED": "false",
    "PREFECT_API_SERVICES_SCHEDULER_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    # Fast retries everywhere in tests; individual tests override where they measure waits.
    "INSIGHTFLOW_HTTP_BACKOFF_BASE": "0.05",
    "INSIGHTFLOW_HTTP_BACKOFF_CAP": "0.2",
    "INSIGHTFLOW_HTTP_TIMEOUT": "5",
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
    log = open(_SESSION_DIR / "prefect-server.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(_PREFECT_PORT)],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ}, start_new_session=True,
    )
    url = _PREFECT_ENV["PREFECT_API_URL"]
    import httpx

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prefect server exited early; see {_SESSION_DIR / 'prefect-server.log'}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    else:
        proc.kill()
        raise RuntimeError("prefect server did not become healthy within 180 s")
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get("INSIGHTFLOW_KEEP_TEST_DIR") != "1":
        shutil.rmtree(_SESSION_DIR, ignore_errors=True)
