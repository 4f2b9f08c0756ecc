"""How a run outlives trouble in its own orchestration: heartbeats, flow retries, Prefect API outages.

One place for the numbers (docs/operations.md explains each; tests/deploy/test_files.py keeps the
Dockerfile, deploy/ecs/base-job-template.json and flows/serve.py in step with ``RUNTIME_ENV``):

- **Heartbeats.** Every flow run emits ``prefect.flow-run.heartbeat`` every ``HEARTBEAT_SECONDS``
  (``PREFECT_FLOWS_HEARTBEAT_FREQUENCY``; Prefect 3.8.8's minimum is 30 s, its default 180 s). The
  crash automation (``python -m automations apply``) marks a run Crashed when no heartbeat and no final
  state arrived for ``CRASH_AFTER_HEARTBEATS`` intervals (150 s): the process running it has died. The
  window is longer than the API outages a run rides out (2 minutes, below), so an outage alone never
  turns a live run Crashed; a dead one is known 2 to 2.5 minutes after it died.
- **Prefect API outages.** The client retries a failed API call ``CLIENT_MAX_RETRIES`` times, waiting
  2, 4, 8 … 2**n s (±``CLIENT_RETRY_JITTER_FACTOR``): 7 retries wait about 254 s in all (Prefect's
  default, 5 retries, gives up after about 62 s). An outage up to about 2 minutes is ridden out
  silently; a longer one (up to ~4 minutes) still ends Completed, after the crash automation has
  marked the run Crashed and alerted (docs/operations.md, "Crashed run"). 429, 502
  and 503 answers are always retried; 500 is not added (not every route is idempotent).
- **Flow retries** (the daily InsightFlow flow only; football's next tick is its retry): ``FLOW_RETRIES``
  more attempts, ``FLOW_RETRY_DELAY_S`` apart, for faults that may clear (a source or AWS outage past
  the HTTP retries, a lost API). A fault that cannot clear by waiting (a broken payload, a bad
  parameter, failed dbt tests) fails at once: ``retry_only_transient`` decides. Every stage is
  idempotent, so a retry re-lands nothing that is already there.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

HEARTBEAT_SECONDS = 30
CRASH_AFTER_HEARTBEATS = 5
CLIENT_MAX_RETRIES = 7
CLIENT_RETRY_JITTER_FACTOR = 0.2

# The settings every flow process gets: in the image (Dockerfile ENV), the ECS job template's env,
# the processes `python -m flows.serve` starts, and command-line runs (tasks/core/console.py).
RUNTIME_ENV = {
    "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_SECONDS),
    "PREFECT_CLIENT_MAX_RETRIES": str(CLIENT_MAX_RETRIES),
    "PREFECT_CLIENT_RETRY_JITTER_FACTOR": str(CLIENT_RETRY_JITTER_FACTOR),
}

FLOW_RETRIES = 2
FLOW_RETRY_DELAY_S = 600


def flow_retries() -> int:
    """``FLOW_RETRIES``, or ``INSIGHTFLOW_FLOW_RETRIES`` (0 turns flow retries off)."""
    return int(os.environ.get("INSIGHTFLOW_FLOW_RETRIES", FLOW_RETRIES))


def flow_retry_delay_s() -> float:
    """``FLOW_RETRY_DELAY_S``, or ``INSIGHTFLOW_FLOW_RETRY_DELAY_S``."""
    return float(os.environ.get("INSIGHTFLOW_FLOW_RETRY_DELAY_S", FLOW_RETRY_DELAY_S))


class RetryingAfterFailure(RuntimeError):
    """An attempt failed and Prefect retries the flow run; the message says when and why."""


def _api_error_types() -> tuple[type[BaseException], ...]:
    import httpx

    return (httpx.TransportError, OSError, TimeoutError)


def is_permanent(exc: BaseException) -> bool:
    """Whether waiting cannot fix ``exc``: a broken payload, a bad parameter, failed dbt tests.

    An exception may carry its own verdict as a ``transient`` attribute: a source fault
    (``FetchError.transient``), a contract violation and a failed dbt build (both ``transient =
    False``). An ingest failure is permanent only if every failed dataset's fault is. Everything else
    (AWS errors past their retries, a lost Prefect API, a busy lock) counts as transient: every stage
    is idempotent, so a retry is safe.
    """
    from prefect.exceptions import ObjectNotFound

    verdict = getattr(exc, "transient", None)
    if isinstance(verdict, bool):
        return not verdict
    if isinstance(exc, ObjectNotFound):  # a block or deployment that is not there
        return True
    causes = getattr(exc, "causes", None)
    if causes:
        return all(is_permanent(c) for c in causes)
    if isinstance(exc, _api_error_types()):
        return False
    return isinstance(exc, ValueError | TypeError | LookupError)


@contextmanager
def retry_only_transient() -> Iterator[None]:
    """Around a flow's body: Prefect's flow retries happen for transient faults only.

    On a failure with retries left: a permanent fault lowers the run's retry budget to the attempts
    already made (the server's retry rule then lets Failed through, so the alert comes at once); a
    transient one is re-raised as ``RetryingAfterFailure``, whose message (the AwaitingRetry state's)
    names the attempt, the next one's start and the cause. The last attempt's own exception is
    re-raised unchanged, so a run's final state always carries the real cause.

    A context manager, not a decorator: Prefect resolves a flow's parameter annotations in the
    flow function's own module, which a wrapper defined here would hide.
    """
    try:
        yield
    except Exception as exc:
        verdict = _attempt_verdict(exc)
        if verdict is None:
            raise
        raise RetryingAfterFailure(verdict) from exc


def _attempt_verdict(exc: BaseException) -> str | None:
    """The retry message when Prefect will retry after ``exc``; None to let the failure through."""
    from prefect.context import FlowRunContext
    from prefect.logging import get_run_logger

    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return None
    policy = context.flow_run.empirical_policy
    retries = policy.retries or 0
    if retries <= 0:
        return None
    logger = get_run_logger()
    try:
        with _client() as client:
            attempt = client.read_flow_run(context.flow_run.id).run_count
            if attempt > retries:
                return None
            if is_permanent(exc):
                logger.error("attempt %d failed with a fault waiting cannot fix: not retried", attempt)
                client.update_flow_run(
                    context.flow_run.id, empirical_policy=policy.model_copy(update={"retries": attempt - 1})
                )
                return None
    except Exception as api_exc:  # the API is gone too: Prefect's own retry rule decides
        logger.warning("could not read this run's attempt count (%s); Prefect retries as configured", api_exc)
        return None
    delay = policy.retry_delay or 0
    at = datetime.now(UTC) + timedelta(seconds=float(delay))
    message = (
        f"attempt {attempt} of {retries + 1} failed; retry {attempt} of {retries} at {at:%H:%M:%S} UTC "
        f"(in {_human(float(delay))}): {type(exc).__name__}: {exc}"
    )
    logger.warning(message)
    return message


def _client():
    from prefect.client.orchestration import get_client

    return get_client(sync_client=True)


def _human(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)} min"
    return f"{seconds:g} s"


def flow_retry_options() -> dict[str, Any]:
    """The ``@flow`` keyword arguments for a flow that retries (the daily InsightFlow flow)."""
    return {"retries": flow_retries(), "retry_delay_seconds": flow_retry_delay_s()}


PUBLISH_RETRY_FOR_S = 300.0
EVENTS_RECONNECTION_ATTEMPTS = 300  # ~1 s apart once refused: about 5 minutes of outage


def _transient_api_error(exc: BaseException) -> bool:
    import httpx
    from prefect.exceptions import PrefectHTTPStatusError

    if isinstance(exc, PrefectHTTPStatusError):
        return exc.response.status_code >= 500 or exc.response.status_code in (408, 429)
    return isinstance(exc, httpx.TransportError | OSError)


def publish(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``fn`` (create an artifact: a view of work already landed), never failing the run for it.

    Prefect's client retries a refused connection only on a client that has connected before; an
    artifact call opens a new one, so a Prefect API outage would fail it at once. Here transient API
    errors are retried with jittered exponential backoff for up to ``PUBLISH_RETRY_FOR_S``; then, or on
    any other error, a warning is logged and the run goes on (None is returned).
    """
    from prefect.logging import get_run_logger
    from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_random_exponential

    logger = get_run_logger()

    def log_retry(state) -> None:
        logger.warning(
            "publishing %s: %s; retrying in %.0f s", what, state.outcome.exception(), state.next_action.sleep
        )

    try:
        for attempt in Retrying(
            retry=retry_if_exception(_transient_api_error),
            wait=wait_random_exponential(multiplier=1, max=60),
            stop=stop_after_delay(PUBLISH_RETRY_FOR_S),
            before_sleep=log_retry,
            reraise=True,
        ):
            with attempt:
                return fn(*args, **kwargs)
    except Exception as exc:
        logger.warning(
            "could not publish %s (%s: %s); the data is landed, the run goes on", what, type(exc).__name__, exc
        )
    return None


@contextmanager
def events_ride_out_api_outages() -> Iterator[None]:
    """Inside a flow run: its events (task-run states, heartbeats, assets) wait out a Prefect API outage.

    Prefect's events client gives up after 10 reconnection attempts (about 8 s) and its worker then
    drops every pending event, task runs' states among them: a run that outlives an outage would
    still show its task runs stuck. This points the worker at the same client with
    ``EVENTS_RECONNECTION_ATTEMPTS``; unconfirmed events are re-sent on reconnection, with their
    original times. Only for a real server (Prefect Cloud included); a temporary local API is left alone.
    """
    from prefect.events.clients import PrefectCloudEventsClient, PrefectEventsClient
    from prefect.events.worker import EventsWorker, emit_events_to_cloud, should_emit_events_to_running_server
    from prefect.settings import PREFECT_API_KEY, PREFECT_API_URL

    if emit_events_to_cloud():
        EventsWorker.set_client_override(
            PrefectCloudEventsClient,
            api_url=PREFECT_API_URL.value(),
            api_key=PREFECT_API_KEY.value(),
            reconnection_attempts=EVENTS_RECONNECTION_ATTEMPTS,
        )
    elif should_emit_events_to_running_server():
        EventsWorker.set_client_override(
            PrefectEventsClient, api_url=PREFECT_API_URL.value(), reconnection_attempts=EVENTS_RECONNECTION_ATTEMPTS
        )
    else:
        yield
        return
    try:
        yield
    finally:
        EventsWorker.set_client_override(None)
