"""HTTP GET with timeouts, classified errors and retries that honour ``Retry-After``.

Shared by the DOSM/data.gov.my fetcher and the football-data.org client. Hand-written rather than
httpx's transport retries (connect errors only) or Prefect task retries (a fixed delay schedule that
cannot follow a server's ``Retry-After``): transient faults (connection errors, timeouts, 429, 5xx)
are retried with exponential backoff and full jitter; other 4xx fail at once.
"""

from __future__ import annotations

import email.utils
import logging
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import httpx

TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})

logger = logging.getLogger(__name__)


class FetchError(Exception):
    """A request that did not yield a usable response; ``transient`` says whether retrying could help."""

    def __init__(self, what: str, url: str, cause: str, *, status: int | None = None, transient: bool = False):
        self.what, self.url, self.cause, self.status, self.transient = what, url, cause, status, transient
        super().__init__(f"{what}: GET {url} failed: {cause}")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry transient faults.

    Defaults suit public open-data hosts; tests shrink them with ``INSIGHTFLOW_HTTP_*`` variables.
    """

    attempts: int = 5
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 60.0
    max_retry_after_s: float = 120.0
    timeout_s: float = 60.0
    connect_timeout_s: float = 10.0

    @classmethod
    def from_env(cls, **overrides: float) -> RetryPolicy:
        env = os.environ
        values = {
            "attempts": int(env.get("INSIGHTFLOW_HTTP_ATTEMPTS", cls.attempts)),
            "backoff_base_s": float(env.get("INSIGHTFLOW_HTTP_BACKOFF_BASE", cls.backoff_base_s)),
            "backoff_cap_s": float(env.get("INSIGHTFLOW_HTTP_BACKOFF_CAP", cls.backoff_cap_s)),
            "max_retry_after_s": float(env.get("INSIGHTFLOW_HTTP_MAX_RETRY_AFTER", cls.max_retry_after_s)),
            "timeout_s": float(env.get("INSIGHTFLOW_HTTP_TIMEOUT", cls.timeout_s)),
        }
        values.update(overrides)
        return cls(**values)

    def timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.timeout_s, connect=self.connect_timeout_s)

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Full-jitter exponential backoff for retry number ``attempt`` (1-based)."""
        ceiling = min(self.backoff_cap_s, self.backoff_base_s * 2 ** (attempt - 1))
        return (rng or random).uniform(ceiling / 2, ceiling)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


def describe_status(response: httpx.Response) -> str:
    """A short cause for an error status, including the server's own message when it sent one."""
    cause = f"HTTP {response.status_code} {response.reason_phrase}".strip()
    message = ""
    try:
        body = response.json()
        if isinstance(body, dict):
            message = str(body.get("message") or body.get("error") or "")
    except ValueError:
        message = response.text[:200].strip() if "html" not in response.headers.get("content-type", "") else ""
    return f"{cause}: {message}" if message else cause


@dataclass
class Attempt:
    """What one try ended with, handed to ``on_attempt`` hooks (e.g. for logging or rate-limit pacing)."""

    number: int
    url: str
    response: httpx.Response | None = None
    error: Exception | None = None
    wait_s: float = 0.0
    extra: dict[str, object] = field(default_factory=dict)


def get(
    client: httpx.Client,
    url: str,
    *,
    what: str,
    headers: Mapping[str, str] | None = None,
    policy: RetryPolicy | None = None,
    ok_status: frozenset[int] = frozenset({200, 304}),
    on_attempt: Callable[[Attempt], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> httpx.Response:
    """GET ``url``, retrying transient faults; return a response whose status is in ``ok_status``.

    ``what`` names the thing being fetched (e.g. ``"dataset iowrt"``) and prefixes every error.
    Raises ``FetchError`` with ``transient=False`` for permanent faults and, after the last attempt,
    with ``transient=True`` for faults that never cleared.
    """
    policy = policy or RetryPolicy.from_env()
    last: FetchError | None = None
    for number in range(1, policy.attempts + 1):
        attempt = Attempt(number=number, url=url)
        try:
            response = client.get(url, headers=dict(headers or {}), timeout=policy.timeout())
            attempt.response = response
        except httpx.TimeoutException as exc:
            last = FetchError(what, url, f"timed out ({type(exc).__name__})", transient=True)
        except httpx.TransportError as exc:
            last = FetchError(what, url, f"connection failed ({type(exc).__name__}: {exc})", transient=True)
        else:
            if response.status_code in ok_status:
                if on_attempt:
                    on_attempt(attempt)
                return response
            cause = describe_status(response)
            if response.status_code not in TRANSIENT_STATUS:
                if on_attempt:
                    on_attempt(attempt)
                raise FetchError(what, url, cause, status=response.status_code, transient=False)
            last = FetchError(what, url, cause, status=response.status_code, transient=True)
        attempt.error = last
        if number == policy.attempts:
            if on_attempt:
                on_attempt(attempt)
            break
        wait = policy.backoff(number)
        if attempt.response is not None:
            retry_after = parse_retry_after(attempt.response.headers.get("Retry-After"))
            if retry_after is not None:
                if retry_after > policy.max_retry_after_s:
                    raise FetchError(
                        what,
                        url,
                        f"{last.cause}; server asks to retry after {retry_after:.0f}s, "
                        f"more than the {policy.max_retry_after_s:.0f}s this run will wait",
                        status=last.status,
                        transient=True,
                    )
                # Honour the server's wait, plus a little jitter so parallel clients do not stampede.
                wait = retry_after + random.uniform(0, min(1.0, policy.backoff_base_s))
        attempt.wait_s = wait
        if on_attempt:
            on_attempt(attempt)
        logger.warning(
            "%s: attempt %d/%d failed (%s); retrying in %.2fs", what, number, policy.attempts, last.cause, wait
        )
        sleep(wait)
    assert last is not None
    raise FetchError(
        what, url, f"{last.cause} (gave up after {policy.attempts} attempts)", status=last.status, transient=True
    )
