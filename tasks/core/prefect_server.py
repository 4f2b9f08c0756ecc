"""Start a throwaway local ``prefect server start`` on loopback: the one helper tests and bench/ share.

Each server gets its own PREFECT_HOME and SQLite database under ``workdir``, so nothing reaches a
user's profile or another server. A fresh database runs every migration before ``/health`` answers:
~15 s on an idle 2-core machine, 75 s seen under load, hence the generous default timeout.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

# Settings that keep a throwaway server and its clients quiet and self-contained.
QUIET_ENV = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
    "DO_NOT_TRACK": "1",
}


class ServerStartError(RuntimeError):
    """The server exited or did not answer ``/health`` in time; the message points at its log."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class LocalPrefectServer:
    """A running server: where its API and UI are, and the client environment that points at it."""

    port: int
    workdir: Path
    log_path: Path
    pid: int

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client_env(self) -> dict[str, str]:
        """Settings for a process that should talk to this server (and only to it)."""
        return {
            **QUIET_ENV,
            "PREFECT_HOME": str(self.workdir / "prefect-home"),
            "PREFECT_API_URL": self.api_url,
            "PREFECT_UI_URL": self.ui_url,
            "PREFECT_LOGGING_TO_API_BATCH_INTERVAL": "0.3",
        }

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def server_env(workdir: Path, port: int, *, ui: bool = False, scheduler: bool = False) -> dict[str, str]:
    """The ``prefect server start`` process's own settings."""
    env = {
        **QUIET_ENV,
        "PREFECT_HOME": str(workdir / "prefect-home"),
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{workdir}/prefect.db",
        "PREFECT_SERVER_UI_ENABLED": "true" if ui else "false",
        # Links in notifications (the automations' `ui_url` filter) are built from this on the server.
        "PREFECT_UI_URL": f"http://127.0.0.1:{port}",
    }
    if ui:
        # The UI asks its API at PREFECT_SERVER_UI_API_URL; without it a port other than 4200 is unreachable.
        env["PREFECT_SERVER_UI_API_URL"] = f"http://127.0.0.1:{port}/api"
    if scheduler:
        env["PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED"] = "true"
        env["PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED"] = "true"
    return env


@contextmanager
def local_prefect_server(
    workdir: Path,
    *,
    port: int | None = None,
    ui: bool = False,
    scheduler: bool = False,
    extra_env: Mapping[str, str] | None = None,
    base_env: Mapping[str, str] | None = None,
    timeout_s: float = 180.0,
) -> Iterator[LocalPrefectServer]:
    """Run ``prefect server start`` on 127.0.0.1 until the block exits; yields once ``/health`` answers.

    ``base_env`` is the environment the server starts from (default: this process's, minus any
    PREFECT_ setting that would point it elsewhere); ``extra_env`` adds server settings on top.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    env = {k: v for k, v in (base_env if base_env is not None else os.environ).items() if not k.startswith("PREFECT_")}
    env.update(server_env(workdir, port, ui=ui, scheduler=scheduler))
    env.update(extra_env or {})
    log_path = workdir / "prefect-server.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    server = LocalPrefectServer(port=port, workdir=workdir, log_path=log_path, pid=proc.pid)
    try:
        _wait_healthy(proc, server, timeout_s)
        yield server
    finally:
        _stop(proc)


def _wait_healthy(proc: subprocess.Popen, server: LocalPrefectServer, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise ServerStartError(
                f"prefect server exited early ({proc.returncode}); log {server.log_path}:\n{server.log()[-3000:]}"
            )
        try:
            if httpx.get(f"{server.api_url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise ServerStartError(f"prefect server not healthy within {timeout_s:.0f} s; log {server.log_path}")
        time.sleep(0.3)


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group, then SIGKILL whatever is left of it."""
    for sig, wait_s in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue
        if sig == signal.SIGTERM:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # uvicorn workers left in the group
            except ProcessLookupError:
                pass
        return
