"""HTTP GET with timeouts, classified errors and retries that honour ``Retry-After``.

Shared by the DOSM/data.gov.my fetcher and the football-data.org client. Transient faults (connection
errors, timeouts, 408/425/429/5xx) are retried with exponential backoff and jitter; other 4xx fail at once.

The retry loop is tenacity's (``Retrying``: stop after N attempts, a wait strategy, an injectable
``sleep``, a before-sleep hook); what stays here is what is ours: which faults are transient, the
backoff formula, honouring ``Retry-After`` up to a cap, and the per-attempt hook the football client
paces its rate budget with. Why tenacity over the alternatives (both on the package index,
checked with ``uv pip install --dry-run``, December 2026): httpx-retries 0.6.0 is a transport, so it
cannot report each attempt (status, wait) to the football client's budget hook nor refuse a
``Retry-After`` beyond our cap with an error naming the dataset; stamina 26.1 is tenacity underneath
with its own defaults, one more dependency for what ``Retrying`` gives directly; Prefect task retries
follow a fixed schedule. tenacity is already installed with Prefect's dependency tree.
"""

from __future__ import annotations

import email.utils
import logging
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

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


def conditional_headers(validators: Mapping[str, Any]) -> dict[str, str]:
    """Conditional request headers from the ``etag`` and ``last_modified`` a source last answered with.

    A server that still has that version answers 304 with no body (RFC 9110 13.1); either is left out
    when unknown, and with neither the request is unconditional.
    """
    headers = {}
    if validators.get("etag"):
        headers["If-None-Match"] = validators["etag"]
    if validators.get("last_modified"):
        headers["If-Modified-Since"] = validators["last_modified"]
    return headers


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


class _Retry(Exception):
    """A transient failure worth another attempt (tenacity retries only this type)."""

    def __init__(self, error: FetchError, attempt: Attempt, retry_after: float | None):
        super().__init__(str(error))
        self.error, self.attempt, self.retry_after = error, attempt, retry_after


def _try_once(
    client: httpx.Client,
    url: str,
    number: int,
    *,
    what: str,
    headers: Mapping[str, str] | None,
    policy: RetryPolicy,
    ok_status: frozenset[int],
    on_attempt: Callable[[Attempt], None] | None,
) -> httpx.Response:
    """One GET: the response if usable; ``FetchError`` if final; ``_Retry`` if another attempt may help."""
    attempt = Attempt(number=number, url=url)
    try:
        response = client.get(url, headers=dict(headers or {}), timeout=policy.timeout())
    except httpx.TimeoutException as exc:
        error = FetchError(what, url, f"timed out ({type(exc).__name__})", transient=True)
    except httpx.TransportError as exc:
        error = FetchError(what, url, f"connection failed ({type(exc).__name__}: {exc})", transient=True)
    else:
        attempt.response = response
        if response.status_code in ok_status:
            if on_attempt:
                on_attempt(attempt)
            return response
        error = FetchError(
            what,
            url,
            describe_status(response),
            status=response.status_code,
            transient=response.status_code in TRANSIENT_STATUS,
        )
        if not error.transient:
            if on_attempt:
                on_attempt(attempt)
            raise error
    attempt.error = error
    if number == policy.attempts:
        if on_attempt:
            on_attempt(attempt)
        raise FetchError(
            what, url, f"{error.cause} (gave up after {policy.attempts} attempts)", status=error.status, transient=True
        )
    retry_after = parse_retry_after(response.headers.get("Retry-After")) if attempt.response is not None else None
    if retry_after is not None and retry_after > policy.max_retry_after_s:
        raise FetchError(
            what,
            url,
            f"{error.cause}; server asks to retry after {retry_after:.0f}s, "
            f"more than the {policy.max_retry_after_s:.0f}s this run will wait",
            status=error.status,
            transient=True,
        )
    raise _Retry(error, attempt, retry_after)


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

    def wait(state: RetryCallState) -> float:
        failure: _Retry = state.outcome.exception()  # type: ignore[assignment]
        if failure.retry_after is not None:
            # Honour the server's wait, plus a little jitter so parallel clients do not stampede.
            return failure.retry_after + random.uniform(0, min(1.0, policy.backoff_base_s))
        return policy.backoff(state.attempt_number)

    def before_sleep(state: RetryCallState) -> None:
        failure: _Retry = state.outcome.exception()  # type: ignore[assignment]
        failure.attempt.wait_s = state.next_action.sleep
        if on_attempt:
            on_attempt(failure.attempt)
        logger.warning(
            "%s: attempt %d/%d failed (%s); retrying in %.2fs",
            what,
            state.attempt_number,
            policy.attempts,
            failure.error.cause,
            failure.attempt.wait_s,
        )

    retrying = Retrying(
        stop=stop_after_attempt(policy.attempts),
        wait=wait,
        retry=retry_if_exception_type(_Retry),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
    for attempt in retrying:
        with attempt:
            return _try_once(
                client,
                url,
                attempt.retry_state.attempt_number,
                what=what,
                headers=headers,
                policy=policy,
                ok_status=ok_status,
                on_attempt=on_attempt,
            )
    raise AssertionError("unreachable: tenacity returns or re-raises the last attempt")
