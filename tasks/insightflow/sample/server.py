"""A loopback server that publishes the offline sample (tasks/insightflow/sample/data.py).

``--sample`` runs and the tests use the same server: it serves the sample at the real hosts' paths
(``/iowrt/iowrt.parquet`` …) with ETag/Last-Modified and 304s, so sample data enters through the
same fetch → validate → land path as live data. Fault modes make it misbehave the ways real hosts
do (5xx bursts, 429 with Retry-After, slow or truncated bodies, HTML with 200, schema drift).
``publish_release(k)`` (or ``sample_server(release=k)``) is the revision mode: the trade indices as
the k-th later release publishes them, one new month each and the three before it revised, with a
later Last-Modified, as DOSM does.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pyarrow as pa
import pyarrow.parquet as pq

from tasks.insightflow.contracts import DATASETS
from tasks.insightflow.sample.data import RELEASED_TABLES, SAMPLE_TABLES, parquet_bytes

RELEASE_INTERVAL_S = 30 * 86_400  # each sample release is Last-Modified about a month after the one before
FAULTS = (
    "html",
    "truncated",
    "empty",
    "empty_table",
    "corrupt",
    "5xx",
    "429",
    "slow",
    "404",
    "missing_column",
    "renamed_column",
    "string_columns",
    "bad_values",
    "extra_column",
)


def apply_table_fault(table: pa.Table, fault: str, arg: str | None) -> pa.Table:
    """Schema and value drift, applied to the published table before encoding."""
    if fault == "empty_table":
        return table.slice(0, 0)
    if fault == "missing_column":
        return table.drop_columns([arg or table.column_names[-1]])
    if fault == "renamed_column":
        old, new = (arg or "date=ymd").split("=")
        return table.rename_columns([new if c == old else c for c in table.column_names])
    if fault == "string_columns":
        return pa.table(
            {
                c: (table[c].cast(pa.string()) if c not in {"series", "series_type", "group"} else table[c])
                for c in table.column_names
            }
        )
    if fault == "bad_values":
        col = arg or next(c for c in table.column_names if pa.types.is_floating(table[c].type))
        values = table[col].cast(pa.string()).to_pylist()
        values[len(values) // 2] = "n/a"
        return table.set_column(table.column_names.index(col), col, pa.array(values, pa.string()))
    if fault == "extra_column":
        return table.append_column(arg or "ron95_skps", pa.array([1.99] * table.num_rows, pa.float64()))
    return table


@dataclass
class SampleServer:
    """A ThreadingHTTPServer on 127.0.0.1 serving path → bytes with conditional GET and fault modes.

    ``faults`` maps a path to ``"mode"`` or ``"mode:arg"`` (e.g. ``"5xx:2"`` fails twice then serves,
    ``"429:1"`` answers one 429 with Retry-After, ``"slow:3"`` waits 3 s before answering).
    """

    payloads: dict[str, bytes]
    tables: dict[str, pa.Table] = field(default_factory=dict)
    faults: dict[str, str] = field(default_factory=dict)
    retry_after_s: float = 1.0
    last_modified: str = formatdate(1_700_000_000, usegmt=True)
    requests: list[dict] = field(default_factory=list)
    _counters: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def set_fault(self, path: str, fault: str | None) -> None:
        with self._lock:
            if fault is None:
                self.faults.pop(path, None)
            else:
                self.faults[path] = fault
            self._counters.pop(path, None)

    def replace(self, path: str, content: bytes) -> None:
        with self._lock:
            self.payloads[path] = content

    def publish_release(self, release: int) -> None:
        """Serve the trade indices as sample release ``release`` publishes them (0 is the standard sample)."""
        if release < 0:
            raise ValueError(f"sample release must be 0 or later, not {release}")
        tables = {DATASETS[name].path: build(release) for name, build in RELEASED_TABLES.items()}
        payloads = {path: parquet_bytes(table) for path, table in tables.items()}
        with self._lock:
            self.tables.update(tables)
            self.payloads.update(payloads)
            self.last_modified = formatdate(1_700_000_000 + release * RELEASE_INTERVAL_S, usegmt=True)

    def count(self, path: str) -> int:
        return sum(1 for r in self.requests if r["path"] == path)

    def _respond(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path.split("?")[0]
        with self._lock:
            fault = self.faults.get(path, "")
            seen = self._counters.get(path, 0)
            self._counters[path] = seen + 1
            content = self.payloads.get(path)
        mode, _, arg = fault.partition(":")
        record = {"path": path, "status": None, "if_none_match": handler.headers.get("If-None-Match")}
        self.requests.append(record)  # recorded on arrival, so slow responses count before they finish
        status, headers, body = 200, {}, content
        if content is None or mode == "404":
            status, body = 404, b"<html><body>Not Found</body></html>"
        elif mode == "5xx" and seen < int(arg or 10**6):
            status, body = 503, b"<html><body>Service Unavailable</body></html>"
        elif mode == "429" and seen < int(arg or 10**6):
            status, body = 429, b"Too Many Requests"
            headers["Retry-After"] = f"{self.retry_after_s:g}"
        elif mode == "slow":
            time.sleep(float(arg or 5))
        elif mode == "html":
            body = b"<!DOCTYPE html><html><head><title>Maintenance</title></head><body>Back soon</body></html>"
        elif mode == "truncated":
            body = content[: len(content) // 2]
        elif mode == "empty":
            body = b""
        elif mode == "corrupt":
            body = content[:4] + bytes(len(content) - 8) + content[-4:]
        elif mode in {
            "empty_table",
            "missing_column",
            "renamed_column",
            "string_columns",
            "bad_values",
            "extra_column",
        }:
            table = self.tables.get(path) or pq.read_table(pa.BufferReader(content))
            body = parquet_bytes(apply_table_fault(table, mode, arg or None))
        if status == 200:
            etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            headers.update(
                {"ETag": etag, "Last-Modified": self.last_modified, "Content-Type": "application/octet-stream"}
            )
            if handler.headers.get("If-None-Match") == etag:
                status, body = 304, b""
            if mode == "html":
                headers["Content-Type"] = "text/html; charset=utf-8"
        elif status >= 400 and body and body.startswith(b"<"):
            headers["Content-Type"] = "text/html"
        record["status"] = status
        handler.send_response(status)
        for k, v in headers.items():
            handler.send_header(k, v)
        handler.send_header("Content-Length", str(len(body or b"")))
        handler.end_headers()
        if body and handler.command != "HEAD":
            try:
                handler.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

    @contextmanager
    def running(self) -> Iterator[SampleServer]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                owner._respond(self)

            def log_message(self, *args) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, name="sample-server", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()


def sample_server(faults: dict[str, str] | None = None, release: int = 0) -> SampleServer:
    """A server publishing the deterministic sample; ``faults`` is keyed by dataset name."""
    tables = {DATASETS[name].path: build() for name, build in SAMPLE_TABLES.items()}
    server = SampleServer(
        payloads={p: parquet_bytes(t) for p, t in tables.items()},
        tables=tables,
        faults={DATASETS[k].path: v for k, v in (faults or {}).items()},
    )
    if release:
        server.publish_release(release)
    return server


# The sample server of the current flow run, kept across the run's attempts (flow retries): its fault
# counters (a "5xx:N" burst) then span the whole run, as a real source outage would, instead of
# restarting with each attempt.
_FOR_RUN: tuple[tuple, SampleServer] | None = None


def sample_server_for_run(faults: dict[str, str] | None = None, release: int = 0) -> SampleServer:
    """``sample_server(faults, release)``, the same one for every attempt of the current flow run."""
    global _FOR_RUN
    from prefect.runtime import flow_run

    key = (flow_run.get_id(), repr(sorted((faults or {}).items())), release)
    if _FOR_RUN is None or _FOR_RUN[0] != key:
        _FOR_RUN = (key, sample_server(faults, release=release))
    return _FOR_RUN[1]
