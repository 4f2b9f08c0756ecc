"""Run an existing Glue crawler over the lake (catalog mode ``crawler``) and wait for it to finish.

Starts the crawler or joins the crawl already running, polls with growing delays under an overall
timeout, and fails with the crawler's own error message.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

# Crawler polling: a crawl over a few hundred small Parquet files takes 1-3 minutes, most of it
# start-up; polling every 5 s growing to 30 s keeps get_crawler calls far below Glue's rate limits.
CRAWLER_POLL_FIRST_S = 5.0
CRAWLER_POLL_MAX_S = 30.0
CRAWLER_TIMEOUT_S = 30 * 60
# Accept a READY crawler as "our crawl finished" only if its last crawl started after we asked,
# allowing for clock skew between this machine and AWS.
CLOCK_SKEW = timedelta(minutes=5)

# A boto3 Glue client (botocore builds its class at run time, so there is nothing finer to annotate with).
GlueClient = Any


class CrawlerFailed(RuntimeError):
    """The crawler's last crawl did not succeed; carries the crawler's own message."""


@dataclass
class CrawlResult:
    """How a crawler run ended and how long this process waited for it."""

    crawler: str
    status: str
    waited_s: float
    joined_running_crawl: bool


def _crawler_state(glue: GlueClient, name: str) -> dict[str, Any]:
    try:
        return glue.get_crawler(Name=name)["Crawler"]
    except glue.exceptions.EntityNotFoundException:
        raise ValueError(
            f"Glue crawler {name!r} does not exist; create it (docs/aws.md) or use catalog mode 'partitions'"
        ) from None


def _crawl_outcome(name: str, crawler: dict[str, Any]) -> str:
    last = crawler.get("LastCrawl") or {}
    status = last.get("Status", "UNKNOWN")
    # AWS reports SUCCEEDED; moto reports its internal crawl state COMPLETED.
    if status in ("SUCCEEDED", "COMPLETED"):
        return status
    where = f" (logs: {last['LogGroup']}/{last['LogStream']})" if last.get("LogGroup") and last.get("LogStream") else ""
    message = last.get("ErrorMessage") or "no error message"
    raise CrawlerFailed(f"Glue crawler {name!r} last crawl {status}: {message}{where}")


def run_crawler(
    glue: GlueClient,
    name: str,
    *,
    timeout_s: float = CRAWLER_TIMEOUT_S,
    poll_first_s: float = CRAWLER_POLL_FIRST_S,
    poll_max_s: float = CRAWLER_POLL_MAX_S,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> CrawlResult:
    """Start crawler ``name`` (or join its running crawl), wait until it is READY, and check how the crawl ended.

    Raises ``CrawlerFailed`` with the crawler's own message if the crawl failed or was cancelled,
    and ``TimeoutError`` after ``timeout_s`` (the crawl keeps running in AWS; the next run joins it).
    """
    started, asked_at = clock(), datetime.now(UTC)
    joined = False
    try:
        glue.start_crawler(Name=name)
    except glue.exceptions.CrawlerRunningException:
        joined = True
    except glue.exceptions.EntityNotFoundException:
        _crawler_state(glue, name)
        raise
    seen_running, delay = joined, poll_first_s
    while True:
        crawler = _crawler_state(glue, name)
        state = crawler.get("State")
        if state in ("RUNNING", "STOPPING"):
            seen_running = True
        elif state == "READY":
            last_start = (crawler.get("LastCrawl") or {}).get("StartTime")
            ours = seen_running or (
                isinstance(last_start, datetime) and last_start.astimezone(UTC) >= asked_at - CLOCK_SKEW
            )
            if ours:
                status = _crawl_outcome(name, crawler)
                return CrawlResult(name, status, round(clock() - started, 3), joined)
        waited = clock() - started
        if waited >= timeout_s:
            raise TimeoutError(
                f"Glue crawler {name!r} still {state} after {waited:.0f} s (timeout {timeout_s:.0f} s); "
                "it keeps running in AWS and the next run will wait for it"
            )
        sleep(min(delay, timeout_s - waited))
        delay = min(poll_max_s, delay * 2)
