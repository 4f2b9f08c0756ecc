"""Loopback stand-ins for deployment tests: a Docker Engine API, a webhook receiver, a Prefect server.

No Docker engine runs on these machines, so ``prefect deploy`` runs the real prefect-docker build and
push steps against ``FakeDockerEngine`` (``DOCKER_HOST=tcp://127.0.0.1:PORT``): it receives the real
build context (after .dockerignore), answers with an image id and accepts the push. Nothing is built.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tasks.core.prefect_server import local_prefect_server
from tests.support.postgres import postgres_bin_dir, postgres_cluster

REPO_ROOT = Path(__file__).resolve().parents[2]
PREFECT = [sys.executable, "-m", "prefect"]


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(handler.rfile.readline().strip().split(b";")[0], 16)
            if size == 0:
                handler.rfile.readline()
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))


@dataclass
class BuildRecord:
    query: dict[str, list[str]]
    files: list[str]
    dockerfile: str


@dataclass
class FakeDockerEngine:
    """Just enough of the Docker Engine API for docker-py's build, tag and push."""

    url: str = ""
    builds: list[BuildRecord] = field(default_factory=list)
    tags: list[tuple[str, str]] = field(default_factory=list)
    pushes: list[tuple[str, str]] = field(default_factory=list)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        engine = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _json(self, status: int, payload) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _stream(self, events: list[dict]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for event in events:
                    data = (json.dumps(event) + "\r\n").encode()
                    self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")

            def do_GET(self):
                path = re.sub(r"^/v[\d.]+", "", urlsplit(self.path).path)
                if path in ("/_ping",):
                    body = b"OK"
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                elif path == "/version":
                    self._json(200, {"ApiVersion": "1.45", "Version": "fake", "MinAPIVersion": "1.24"})
                elif m := re.fullmatch(r"/images/(.+)/json", path):
                    self._json(200, {"Id": m.group(1), "RepoTags": []})
                else:
                    self._json(404, {"message": f"fake engine: no GET {path}"})

            def do_POST(self):
                split = urlsplit(self.path)
                path, query = re.sub(r"^/v[\d.]+", "", split.path), parse_qs(split.query)
                body = _read_body(self)
                if path == "/build":
                    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
                        names = tar.getnames()
                    engine.builds.append(BuildRecord(query, names, query.get("dockerfile", ["Dockerfile"])[0]))
                    image_id = f"sha256:{len(engine.builds):064x}"
                    self._stream([{"stream": "fake engine: context received\n"}, {"aux": {"ID": image_id}}])
                elif m := re.fullmatch(r"/images/(.+)/tag", path):
                    engine.tags.append((query["repo"][0], query.get("tag", ["latest"])[0]))
                    self.send_response(201)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif m := re.fullmatch(r"/images/(.+)/push", path):
                    tag = query.get("tag", ["latest"])[0]
                    engine.pushes.append((m.group(1), tag))
                    self._stream([{"status": "Pushing"}, {"status": f"{tag}: digest: sha256:{'0' * 64} size: 1"}])
                else:
                    self._json(404, {"message": f"fake engine: no POST {path}"})

        return Handler


@pytest.fixture(scope="module")
def fake_docker_engine() -> Iterator[FakeDockerEngine]:
    engine = FakeDockerEngine()
    server = ThreadingHTTPServer(("127.0.0.1", 0), engine.handler())
    engine.url = f"tcp://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield engine
    server.shutdown()
    server.server_close()


@dataclass
class WebhookReceiver:
    url: str = ""
    messages: list[dict] = field(default_factory=list)

    def distinct(self) -> list[dict]:
        """The messages without exact repeats.

        Prefect's trigger service acts on an event, then (on SQLite under load) can fail to record a
        proactive trigger's bucket for the same event ("database is locked"); the event is redelivered and
        the reactive automation sends the same notification again. A second alert about anything else (a
        second automation, a second run) differs in its text, so this still counts it.
        """
        unique: list[dict] = []
        for message in self.messages:
            if message not in unique:
                unique.append(message)
        return unique

    def wait_for(self, count: int, timeout: float) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.2)
        return list(self.messages)


@pytest.fixture(scope="module")
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = _read_body(self)
            try:
                receiver.messages.append(json.loads(body))
            except ValueError:
                receiver.messages.append({"raw": body.decode(errors="replace")})
            self.send_response(204)
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/alerts"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield receiver
    server.shutdown()
    server.server_close()


@dataclass
class Processes:
    """Every process a test starts, in its own process group, killed as a group in ``stop_all``."""

    log_dir: Path
    procs: list[tuple[str, subprocess.Popen]] = field(default_factory=list)

    def start(self, name: str, args: list[str], env: dict[str, str], cwd: Path = REPO_ROOT) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "ab")
        started_at = datetime.now(UTC)
        proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        proc.started_at = started_at  # what a server-side timestamp is compared with (same host clock)
        self.procs.append((name, proc))
        return proc

    def log(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop_all(self) -> None:
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 15
        for _, proc in reversed(self.procs):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # anything the group left behind
            except ProcessLookupError:
                pass


@dataclass
class E2EServer:
    """A throwaway ``prefect server start`` with its own PREFECT_HOME and database."""

    api_url: str
    ui_url: str
    home: Path
    processes: Processes

    def env(self, **extra: str) -> dict[str, str]:
        """The environment for a CLI call against this server; nothing from the test session's server."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PREFECT_", "DOCKER_"))
            and (k.startswith("INSIGHTFLOW_HTTP_") or not k.startswith("INSIGHTFLOW_"))
        }
        env.update(
            PREFECT_HOME=str(self.home / "prefect-home"),
            PREFECT_API_URL=self.api_url,
            PREFECT_UI_URL=self.ui_url,
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            DO_NOT_TRACK="1",
            PREFECT_LOGGING_TO_API_BATCH_INTERVAL="0.3",
            PREFECT_CLI_WRAP_LINES="false",
            COLUMNS="200",
        )
        env.update(extra)
        return env

    def cli(self, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [*PREFECT, *args], env=env or self.env(), cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout
        )
        if result.returncode != 0:
            raise AssertionError(
                f"prefect {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result

    def alert_report(self, flow_run_id) -> str:
        """What this server knows when an alert for ``flow_run_id`` did not arrive: for a failure message.

        The run's own state events (was its Failed event recorded?), every automation event (did a
        trigger fire, did its action fail, and why?), the events Prefect's in-memory broker dead-lettered
        after its retries (never evaluated) and the errors in the server's log.
        """
        import httpx

        def describe(event: dict) -> str:
            return f"{event['occurred']} {event['event']} {event['resource'].get('prefect.resource.name', '')}"

        def events(filter_: dict) -> list[str]:
            try:
                response = httpx.post(
                    f"{self.api_url}/events/filter", json={"filter": filter_, "limit": 50}, timeout=30
                )
                response.raise_for_status()
            except httpx.HTTPError as exc:
                return [f"(events not readable: {exc!r})"]
            return [
                f"{describe(e)} {json.dumps(e.get('payload') or {})[:400]}"
                for e in sorted(response.json().get("events", []), key=lambda e: e["occurred"])
            ]

        dead_letters = []  # events Prefect's in-memory broker gave up on after its retries
        for path in sorted((self.home / "prefect-home" / "dlq").glob("*")):
            try:
                dead_letters.append(describe(json.loads(json.loads(path.read_text())["data"])))
            except (OSError, ValueError, KeyError) as exc:
                dead_letters.append(f"{path.name}: unreadable ({exc!r})")
        run_events = events({"resource": {"id": [f"prefect.flow-run.{flow_run_id}"]}})
        automation_events = events({"event": {"prefix": ["prefect.automation."]}})
        log_path = self.home / "prefect-server.log"
        log = log_path.read_text(errors="replace").splitlines() if log_path.exists() else []
        errors = [line for line in log if re.search(r"error|exception|locked|traceback|failed", line, re.I)]
        return "\n".join(
            [
                f"flow run {flow_run_id} events:",
                *run_events,
                "automation events:",
                *automation_events,
                "dead-lettered events (never evaluated by the trigger service):",
                *dead_letters,
                f"server log ({log_path}), lines naming an error (last 40 of {len(errors)}):",
                *errors[-40:],
            ]
        )


@contextmanager
def e2e_server_on(home: Path, database_url: str | None = None) -> Iterator[E2EServer]:
    """A throwaway server under ``home`` on ``database_url`` (default: SQLite in ``home``).

    Deployments carry real schedules (football every 5 minutes): the scheduler stays off in a test. An
    ENQUEUEd run retries its concurrency slot after SLOT_WAIT (default 30 s), here 1 s. The processes a
    test starts are stopped before their server.
    """
    extra = {"PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS": "1"}
    if database_url:
        extra["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = database_url
    processes = Processes(home)
    with local_prefect_server(home, extra_env=extra, timeout_s=420) as server:  # migrations, loaded machine
        try:
            yield E2EServer(server.api_url, server.ui_url, home, processes)
        finally:
            processes.stop_all()


@pytest.fixture(scope="module")
def e2e_server(tmp_path_factory) -> Iterator[E2EServer]:
    """A server on PostgreSQL, as docs/deploy.md section 10 sets one up for production.

    On SQLite, under this suite's load, the trigger service lost a failure alert: evaluating the run's
    ``Failed`` event hit "database is locked" four times within 3 s, and Prefect's in-memory broker
    (three immediate retries) moved the event to its dead-letter folder, so no alert was ever sent
    (CI at ca8d331; reproduced here, the event found in ``$PREFECT_HOME/dlq``). Without PostgreSQL's
    binaries (``bash .ci/install-postgresql``) it falls back to SQLite locally and fails under CI.
    """
    home = tmp_path_factory.mktemp("e2e")
    bin_dir = postgres_bin_dir(skip_without=False)
    with ExitStack() as stack:
        url = stack.enter_context(postgres_cluster(bin_dir)).url if bin_dir else None
        yield stack.enter_context(e2e_server_on(home, url))
