"""A fault-injecting reverse proxy in front of moto: real HTTP on loopback, faults on the wire.

Clients point their endpoint URL at the proxy; every request goes to moto unchanged (Host header
included, so SigV4 signatures still match) unless a rule claims it, in which case the proxy answers
with the AWS error the rule names and moto never sees the request. Each request is recorded with the
operation it carried, so tests can count writes and see what the client retried.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from tasks.core.prefect_server import free_port


@dataclass
class Request:
    """One request as the proxy saw it."""

    method: str
    path: str
    target: str  # X-Amz-Target for JSON APIs (``AWSGlue.GetTable``), "" for S3
    status: int = 0
    injected: bool = False


@dataclass
class Rule:
    """Answer requests that ``match`` with an AWS error; ``after`` lets that many matches through first,
    then ``times`` are failed (None: every one after that)."""

    match: Callable[[Request], bool]
    status: int
    code: str
    after: int = 0
    times: int | None = None
    seen: int = 0
    failed: int = 0

    def claims(self, request: Request) -> bool:
        if not self.match(request):
            return False
        self.seen += 1
        if self.seen <= self.after or (self.times is not None and self.failed >= self.times):
            return False
        self.failed += 1
        return True


def s3_put(prefix: str) -> Callable[[Request], bool]:
    """Matches S3 object PUTs whose path (``/bucket/key``) contains ``prefix``."""
    return lambda r: r.method == "PUT" and not r.target and prefix in r.path and r.path.count("/") >= 2


def json_api(operation: str) -> Callable[[Request], bool]:
    """Matches a JSON-protocol call such as ``AWSGlue.BatchCreatePartition``."""
    return lambda r: r.target.endswith(f".{operation}")


@dataclass
class FaultProxy:
    upstream: str
    rules: list[Rule] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        parts = urlsplit(self.upstream)
        self._upstream = (parts.hostname, parts.port)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(self.command, self.path.split("?")[0], self.headers.get("X-Amz-Target", ""))
                with proxy._lock:
                    proxy.requests.append(request)
                    rule = next((r for r in proxy.rules if r.claims(request)), None)
                if rule is not None:
                    request.status, request.injected = rule.status, True
                    self._error(rule)
                    return
                conn = http.client.HTTPConnection(*proxy._upstream, timeout=60)
                try:
                    conn.request(self.command, self.path, body=body, headers=dict(self.headers.items()))
                    response = conn.getresponse()
                    payload = response.read()
                finally:
                    conn.close()
                request.status = response.status
                self.send_response(response.status)
                for name, value in response.getheaders():
                    if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            def _error(self, rule: Rule) -> None:
                if self.headers.get("X-Amz-Target"):
                    payload = json.dumps({"__type": rule.code, "message": f"injected {rule.code}"}).encode()
                    kind = "application/x-amz-json-1.1"
                else:
                    payload = (
                        f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{rule.code}</Code>"
                        f"<Message>injected {rule.code}</Message></Error>"
                    ).encode()
                    kind = "application/xml"
                self.send_response(rule.status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FaultProxy:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def count(self, match: Callable[[Request], bool], *, injected: bool | None = None) -> int:
        with self._lock:
            return sum(1 for r in self.requests if match(r) and (injected is None or r.injected == injected))
