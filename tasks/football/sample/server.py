"""A loopback server that serves the football sample (tasks/football/sample/data.py) at the API's paths.

``python flows/football.py --sample`` starts ``SampleServer`` in-process and points the client's base
URL at it, so the offline run goes through the same fetch, pacing, validation and landing code as a
real one. The server behaves like the API where the pipeline depends on it: it checks
``X-Auth-Token``, keeps a per-minute request budget (the "minute" is configurable so tests can use
3 seconds), sends ``X-Requests-Available-Minute`` and ``X-RequestCounter-Reset`` on every response,
answers 429/403/404/400 with the API's JSON error bodies, and can be scripted to misbehave.


The server also answers conditional
requests like a well-behaved API: an ``ETag`` (a hash of the body) and a ``Last-Modified`` (when the
competition's data last changed) on every 200, and 304 for a matching ``If-None-Match`` (checked
first, as RFC 9110 says) or a not-older ``If-Modified-Since``.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import math
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from tasks.football.sample.data import COMPETITIONS, SAMPLE_SEASON, SAMPLE_TOKEN, scorers, standings

RESTRICTED_MESSAGE = (
    "The resource you are looking for is restricted and apparently not within your permissions. "
    "Please check your subscription."
)
NOT_FOUND_MESSAGE = "The resource you are looking for does not exist."
INVALID_TOKEN_MESSAGE = "Your API token is invalid."


def _not_modified(conditions: dict[str, str], etag: str, changed_at: float) -> bool:
    """RFC 9110 13.2.2: If-None-Match decides when present; else If-Modified-Since (1-second resolution)."""
    if "If-None-Match" in conditions:
        return etag in {tag.strip() for tag in conditions["If-None-Match"].split(",")}
    if "If-Modified-Since" in conditions:
        try:
            since = email.utils.parsedate_to_datetime(conditions["If-Modified-Since"]).timestamp()
        except (TypeError, ValueError):
            return False
        return int(changed_at) <= since
    return False


@dataclass
class Fault:
    """One scripted response served instead of the real one (status, body, content type, extra headers)."""

    status: int
    body: bytes | str = b""
    content_type: str = "application/json;charset=UTF-8"
    headers: dict[str, str] = field(default_factory=dict)


class SampleServer:
    """football-data.org v4 on loopback: token check, per-window budget, the two rate headers, faults.

    ``faults[path]`` is a queue of ``Fault`` served (in order) before the real answer for that path,
    e.g. ``faults["/v4/competitions/PL/standings"] = [Fault(503), Fault(503)]``.
    """

    def __init__(
        self,
        token: str = SAMPLE_TOKEN,
        per_minute: int = 10,
        window_s: float = 60.0,
        season: int = SAMPLE_SEASON,
        restricted: tuple[str, ...] = ("CL", "WC"),
        send_retry_after: bool = True,
        conditional: bool = True,
        volatile: bool = False,
    ):
        self.token, self.per_minute, self.window_s, self.season = token, per_minute, window_s, season
        self.restricted, self.send_retry_after = restricted, send_retry_after
        # conditional: answer If-None-Match / If-Modified-Since; volatile: re-stamp lastUpdated on every response.
        self.conditional, self.volatile = conditional, volatile
        self.played: dict[str, int] = {}
        self._changed_at: dict[str, float] = {}
        self._started_at = time.time()
        self.faults: dict[str, deque[Fault]] = defaultdict(deque)
        self.log: list[tuple[str, int]] = []
        self._lock = threading.Lock()
        self._window_start: float | None = None
        self._used = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def throttled(self) -> int:
        """How many requests were answered 429 by the budget (scripted 429s not included)."""
        return sum(1 for path, status in self.log if status == 429 and not path.startswith("fault:"))

    def add_faults(self, path: str, *faults: Fault) -> None:
        with self._lock:
            self.faults[path].extend(faults)

    def play(self, matchday: int, *codes: str) -> None:
        """Make ``matchday`` matchdays played for ``codes`` (default: every competition)."""
        with self._lock:
            for code in codes or tuple(COMPETITIONS):
                if self.played.get(code) != matchday:
                    self.played[code] = matchday
                    self._changed_at[code] = time.time()

    def spend(self, requests: int) -> None:
        """Use up part of the current window's budget, as another client sharing the token would."""
        with self._lock:
            self._tick(time.monotonic())
            self._used += requests

    def _tick(self, now: float) -> None:
        if self._window_start is None or now - self._window_start >= self.window_s:
            self._window_start, self._used = now, 0

    def _budget(self, count: bool) -> tuple[int, int, bool]:
        """(available after this request, seconds to reset, over budget) for a request arriving now."""
        with self._lock:
            now = time.monotonic()
            self._tick(now)
            over = self._used >= self.per_minute
            if count and not over:
                self._used += 1
            reset = max(1, math.ceil(self._window_start + self.window_s - now))
            return max(0, self.per_minute - self._used), reset, over

    def respond(
        self, path: str, query: dict[str, list[str]], token: str | None, conditions: dict[str, str] | None = None
    ) -> tuple[int, bytes, str, dict[str, str]]:
        """The status, body, content type and headers for one GET (``conditions``: If-None-Match, If-Modified-Since)."""
        available, reset, over = self._budget(count=True)
        headers = {
            "X-Requests-Available-Minute": str(available),
            "X-RequestCounter-Reset": str(reset),
            "X-API-Version": "v4",
            "X-Authenticated-Client": "InsightFlow sample server",
        }
        with self._lock:
            fault = self.faults[path].popleft() if self.faults.get(path) else None
        if fault is not None:
            body = fault.body.encode() if isinstance(fault.body, str) else fault.body
            self.log.append((f"fault:{path}", fault.status))
            return fault.status, body, fault.content_type, {**headers, **fault.headers}
        if over:
            if self.send_retry_after:
                headers["Retry-After"] = str(reset)
            return self._error(path, 429, f"You reached your request limit. Wait {reset} seconds.", headers)
        if not token:
            return self._error(path, 403, RESTRICTED_MESSAGE, headers)
        if token != self.token:
            return self._error(path, 400, INVALID_TOKEN_MESSAGE, headers)
        parts = path.strip("/").split("/")
        if len(parts) != 4 or parts[:2] != ["v4", "competitions"] or parts[3] not in ("standings", "scorers"):
            return self._error(path, 404, NOT_FOUND_MESSAGE, headers)
        code = parts[2]
        if code in self.restricted:
            return self._error(path, 403, RESTRICTED_MESSAGE, headers)
        if code not in COMPETITIONS:
            return self._error(path, 404, NOT_FOUND_MESSAGE, headers)
        try:
            season = int(query.get("season", [self.season])[0])
            limit = int(query.get("limit", [10])[0])
        except ValueError:
            return self._error(path, 400, "The filter season or limit is invalid.", headers)
        with self._lock:
            played = self.played.get(code)
            changed_at = self._changed_at.get(code, self._started_at)
        if parts[3] == "standings":
            document = standings(code, season, played)
        else:
            stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if self.volatile else None
            document = scorers(code, season, limit, played, updated=stamp)
        body = json.dumps(document, ensure_ascii=False).encode()
        if self.conditional:
            headers["ETag"] = f'"{hashlib.sha256(body).hexdigest()[:24]}"'
            headers["Last-Modified"] = email.utils.formatdate(changed_at, usegmt=True)
            if _not_modified(conditions or {}, headers["ETag"], changed_at):
                self.log.append((path, 304))
                return 304, b"", "application/json;charset=UTF-8", headers
        self.log.append((path, 200))
        return 200, body, "application/json;charset=UTF-8", headers

    def _error(
        self, path: str, status: int, message: str, headers: dict[str, str]
    ) -> tuple[int, bytes, str, dict[str, str]]:
        self.log.append((path, status))
        body = json.dumps({"message": message, "errorCode": status}).encode()
        return status, body, "application/json;charset=UTF-8", headers

    def start(self) -> SampleServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parsed = urlparse(self.path)
                conditions = {
                    name: self.headers[name]
                    for name in ("If-None-Match", "If-Modified-Since")
                    if self.headers.get(name)
                }
                status, body, content_type, headers = server.respond(
                    parsed.path, parse_qs(parsed.query), self.headers.get("X-Auth-Token"), conditions
                )
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # requests carry the token header; stay quiet
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="football-sample-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> SampleServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
