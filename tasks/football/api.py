"""football-data.org v4 client: paced fetches, response validation and lake keys.

Endpoints ``/v4/competitions/{code}/standings`` and ``/v4/competitions/{code}/scorers``, token in
``X-Auth-Token``. The free tier allows 10 requests a minute and says how many are left in
``X-Requests-Available-Minute`` and when the window resets in ``X-RequestCounter-Reset``; the
``RatePacer`` reads both from every response and waits for the reset before spending the last
call, so a run over several competitions does not trip 429. A 429 that still happens (another
client sharing the token) is waited out; 5xx and timeouts retry with backoff (``tasks.core.http``);
400/403/404 fail at once with the API's own message and the competition named.
The token is only ever put in a request header: never logged, raised, written or returned.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from blocks import names
from tasks.core.http import Attempt, FetchError, RetryPolicy, get

DEFAULT_BASE_URL = "https://api.football-data.org"
TOKEN_HEADER = "X-Auth-Token"
AVAILABLE_HEADER = "X-Requests-Available-Minute"
RESET_HEADER = "X-RequestCounter-Reset"
ENDPOINTS = ("standings", "scorers")
# The scorers endpoint returns 10 players unless asked; the team mart wants each team's best scorer.
SCORERS_LIMIT = 100

logger = logging.getLogger(__name__)


class MissingTokenError(RuntimeError):
    """No football-data.org token was configured; raised before any request is made."""


class FootballApiError(RuntimeError):
    """A fetch failed for good (or its transient faults never cleared); names competition and endpoint."""

    def __init__(
        self, competition: str, endpoint: str, cause: str, *, status: int | None = None, transient: bool = False
    ):
        self.competition, self.endpoint, self.cause, self.status, self.transient = (
            competition,
            endpoint,
            cause,
            status,
            transient,
        )
        super().__init__(f"football-data.org competition {competition}, endpoint {endpoint}: {cause}")


class InvalidResponseError(ValueError):
    """A 200 response whose body is not JSON or lacks fields the models use; the body was quarantined."""

    def __init__(self, competition: str, endpoint: str, cause: str, quarantine_key: str | None = None):
        self.competition, self.endpoint, self.cause, self.quarantine_key = competition, endpoint, cause, quarantine_key
        where = f" (quarantined at {quarantine_key})" if quarantine_key else ""
        super().__init__(
            f"football-data.org competition {competition}, endpoint {endpoint}: invalid response: {cause}{where}"
        )


@dataclass(frozen=True)
class Fetched:
    """One response as received: the raw body plus what is needed to file it in the lake.

    ``status`` 304 means the API confirmed the validators sent (``If-None-Match``/``If-Modified-Since``)
    still describe its data: the body is empty and nothing is to be landed.
    """

    competition: str
    endpoint: str
    season: int | None
    url: str
    body: bytes
    content_type: str
    fetched_at: datetime
    status: int = 200
    etag: str | None = None
    last_modified: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


def base_url(override: str | None = None) -> str:
    """``FOOTBALL_DATA_BASE_URL`` (or the override), default the public API, without trailing slash."""
    return (override or os.environ.get("FOOTBALL_DATA_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")


def resolve_token(block_name: str | None = names.FOOTBALL_DATA_TOKEN, env: dict[str, str] | None = None) -> str:
    """The API token from the ``Secret`` block, else ``FOOTBALL_DATA_TOKEN``; a clear error if neither is set."""
    env = os.environ if env is None else env
    if block_name:
        from prefect.blocks.system import Secret

        try:
            value = Secret.load(block_name).get()
        except (ValueError, RuntimeError, OSError, httpx.HTTPError):
            value = None
        if value:
            return str(value)
    token = env.get("FOOTBALL_DATA_TOKEN", "").strip()
    if not token:
        raise MissingTokenError(
            f"No football-data.org API token: save a Secret block named {block_name!r} "
            "(`python -m blocks register --only football` with FOOTBALL_DATA_TOKEN set) or export "
            "FOOTBALL_DATA_TOKEN for local runs. Free tokens: https://www.football-data.org/client/register"
        )
    return token


class RatePacer:
    """Spends the per-minute request budget the API reports and waits for the reset before running dry.

    Thread-safe and shared by every fetch of one run (one token = one budget).
    """

    def __init__(
        self,
        reserve: int = 0,
        margin_s: float = 0.25,
        max_wait_s: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.reserve, self.margin_s, self.max_wait_s = reserve, margin_s, max_wait_s
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self.available: int | None = None
        self.reset_at: float | None = None
        self.waited_s = 0.0
        self.throttled = 0

    def observe(self, response: httpx.Response) -> None:
        """Record the budget headers of one response (a 429 means the budget is spent, whatever it says)."""
        available = _int_header(response, AVAILABLE_HEADER)
        reset_s = _int_header(response, RESET_HEADER)
        with self._lock:
            now = self._clock()
            if response.status_code == 429:
                self.throttled += 1
                available = 0
            if available is not None:
                self.available = available
            if reset_s is not None:
                self.reset_at = now + reset_s

    def on_attempt(self, attempt: Attempt) -> None:
        """``tasks.core.http.get`` hook: every response, including retried ones, updates the budget."""
        if attempt.response is not None:
            self.observe(attempt.response)

    def wait_s(self) -> float:
        """Seconds to wait before the next request may be sent."""
        with self._lock:
            if self.available is None or self.available > self.reserve or self.reset_at is None:
                return 0.0
            return max(0.0, self.reset_at - self._clock() + self.margin_s)

    def pace(self) -> float:
        """Block until the budget allows one more request; returns the seconds waited."""
        wait = min(self.wait_s(), self.max_wait_s)
        if wait > 0:
            logger.info("football-data.org budget spent; waiting %.1fs for the per-minute window to reset", wait)
            self._sleep(wait)
            with self._lock:
                self.waited_s += wait
                self.available, self.reset_at = None, None
        return wait

    def sleep_then_pace(self, seconds: float) -> None:
        """The ``sleep`` given to ``tasks.core.http.get``: back off, then make sure the retry has budget too."""
        self._sleep(seconds)
        self.pace()


def _int_header(response: httpx.Response, name: str) -> int | None:
    try:
        return int(float(response.headers[name]))
    except (KeyError, ValueError):
        return None


def endpoint_url(root: str, competition: str, endpoint: str, season: int | None) -> str:
    """The v4 URL for one competition's standings or scorers."""
    if endpoint not in ENDPOINTS:
        raise ValueError(f"unknown football-data.org endpoint {endpoint!r}; expected one of {ENDPOINTS}")
    params = {"season": season} if season else {}
    if endpoint == "scorers":
        params["limit"] = SCORERS_LIMIT
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"{root}/v4/competitions/{competition}/{endpoint}" + (f"?{query}" if query else "")


def fetch(
    client: httpx.Client,
    root: str,
    token: str,
    competition: str,
    endpoint: str,
    season: int | None,
    pacer: RatePacer,
    policy: RetryPolicy | None = None,
    validators: dict[str, str] | None = None,
) -> Fetched:
    """GET one endpoint within the rate budget; raise ``FootballApiError`` naming competition and endpoint.

    ``validators`` are conditional request headers (``If-None-Match``, ``If-Modified-Since``) remembered
    from the last response; an API that honours them answers 304 with no body.
    """
    if not token:
        raise MissingTokenError("football-data.org token is empty")
    url = endpoint_url(root, competition, endpoint, season)
    pacer.pace()
    try:
        response = get(
            client,
            url,
            what=f"football-data.org {competition} {endpoint}",
            headers={**(validators or {}), TOKEN_HEADER: token},
            policy=policy,
            on_attempt=pacer.on_attempt,
            sleep=pacer.sleep_then_pace,
        )
    except FetchError as exc:
        raise FootballApiError(competition, endpoint, exc.cause, status=exc.status, transient=exc.transient) from None
    return Fetched(
        competition=competition,
        endpoint=endpoint,
        season=season,
        url=url,
        body=response.content,
        content_type=response.headers.get("content-type", ""),
        fetched_at=datetime.now(UTC),
        status=response.status_code,
        etag=response.headers.get("ETag"),
        last_modified=response.headers.get("Last-Modified"),
    )


@dataclass
class FetchSession:
    """What one run shares across fetches: the HTTP client, the budget and the retry policy."""

    root: str
    token: str = field(repr=False)
    pacer: RatePacer = field(default_factory=RatePacer)
    policy: RetryPolicy = field(default_factory=RetryPolicy.from_env)
    client: httpx.Client = field(default_factory=lambda: httpx.Client(follow_redirects=True))

    def close(self) -> None:
        self.client.close()


# No task retries: tasks.core.http.get already retries transient faults, honouring Retry-After and the budget.
@task(name="fetch-football-endpoint", cache_policy=NO_CACHE)
def fetch_endpoint(
    session: FetchSession, competition: str, endpoint: str, season: int | None, validators: dict[str, str] | None = None
) -> Fetched:
    """Fetch one competition's standings or scorers within the rate budget (transient faults retried inside)."""
    log = get_run_logger()
    fetched = fetch(
        session.client,
        session.root,
        session.token,
        competition,
        endpoint,
        season,
        session.pacer,
        session.policy,
        validators,
    )
    log.info(
        "Fetched %s %s (HTTP %d, %d bytes); budget left this minute: %s",
        competition,
        endpoint,
        fetched.status,
        len(fetched.body),
        session.pacer.available,
    )
    return fetched
