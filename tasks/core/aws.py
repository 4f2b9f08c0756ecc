"""The retry policy of every AWS client the product builds (S3 lake, Glue catalog, Athena report reads).

Without a stated policy, botocore uses its ``legacy`` mode with 5 attempts, and anything in the
environment overrides it: with ``AWS_MAX_ATTEMPTS=1`` exported on a worker, one S3 ``SlowDown`` or Glue
``ThrottlingException`` failed the whole run (measured on moto behind a fault-injecting proxy, issue 20).
So the clients carry an explicit botocore ``Config``: ``standard`` mode (it retries throttling codes
such as SlowDown, ThrottlingException and TooManyRequestsException, 5xx and connection errors, with
exponential backoff and full jitter capped at 20 s) and 8 attempts in all, enough to ride out a
throttling burst of about a minute; the worst case before a persistent fault fails is the sum of those
backoffs, about 1-2 min.

The retry budget (issue 26). botocore's standard mode (and adaptive, which adds a rate limiter on top of
the same handler) keeps a retry quota per client: 500 units, 5 taken per retry (10 after a timeout), 1
given back per first-try success, and, when a retried call finally succeeds, only the cost of its
*last* retry given back. A call throttled twice and then written therefore costs 5 net, and the lake
reuses one client for a whole run (and prefect-aws caches it for the process, so a served deployment
keeps it across runs): a storm that throttles every PutObject twice drained the quota after about 100
objects, and every later retry was refused, so a cold prod run (200+ objects) failed with ``SlowDown``.
``retry_budget`` replaces the client's retry handler with the same standard policy (same retryable
errors, same attempts) whose quota gives back *everything* a call spent once it succeeds: a storm the
service recovers from costs nothing, while an outage, where calls keep failing, still empties the
budget and stops retries as botocore's does. Its backoff is botocore's (full jitter, base doubling from
1 s, capped at 20 s), with base and cap settable (``INSIGHTFLOW_AWS_BACKOFF_BASE``, ``_CAP``) as the
HTTP sources' are. The handler is built from botocore's own ``botocore.retries.standard`` classes; the
lock pins botocore and tests/tasks/core/test_aws_storms.py checks both the drain and the fix on the wire.
The S3 lake and the Glue catalog use it; the report's Athena reads (pyathena builds its own client, a
handful of calls per run) and dbt-athena keep botocore's quota.

Precedence (botocore 1.40, measured by ``tests/tasks/core/test_aws.py``): a retry setting in the
client's ``Config`` wins over ``AWS_MAX_ATTEMPTS`` / ``AWS_RETRY_MODE`` and ``~/.aws/config``. The
product's own settings are:

- ``INSIGHTFLOW_AWS_MAX_ATTEMPTS`` (default 8) and ``INSIGHTFLOW_AWS_RETRY_MODE`` (``standard`` or
  ``adaptive``; adaptive also rate-limits the client after throttling, useful only for one long-lived
  client hammering one API, which a run is not);
- or, per deployment, ``retries`` in the ``insightflow-aws`` block's ``aws_client_parameters.config``
  (prefect-aws's own field, which ``python -m blocks register`` fills): a block that states retries
  is used as it is; the environment fills in a block that states none.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prefect_aws import AwsCredentials

DEFAULT_MODE = "standard"
DEFAULT_MAX_ATTEMPTS = 8
MODES = ("standard", "adaptive", "legacy")


def retry_settings(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """botocore's ``retries`` option from ``INSIGHTFLOW_AWS_*`` (``total_max_attempts`` counts the first try)."""
    env = os.environ if env is None else env
    mode = (env.get("INSIGHTFLOW_AWS_RETRY_MODE") or DEFAULT_MODE).strip().lower()
    if mode not in MODES:
        raise ValueError(f"INSIGHTFLOW_AWS_RETRY_MODE must be one of {', '.join(MODES)}, not {mode!r}")
    raw = env.get("INSIGHTFLOW_AWS_MAX_ATTEMPTS") or str(DEFAULT_MAX_ATTEMPTS)
    try:
        attempts = int(raw)
    except ValueError:
        raise ValueError(f"INSIGHTFLOW_AWS_MAX_ATTEMPTS must be a whole number, not {raw!r}") from None
    if attempts < 1:
        raise ValueError(f"INSIGHTFLOW_AWS_MAX_ATTEMPTS must be at least 1, not {attempts}")
    return {"mode": mode, "total_max_attempts": attempts}


def client_config(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The botocore ``Config`` options (as a dict, the form the AwsCredentials block stores) for our clients."""
    return {"retries": retry_settings(env)}


def with_retries(credentials: AwsCredentials, env: Mapping[str, str] | None = None) -> AwsCredentials:
    """``credentials`` with our retry policy in its client config unless the block already states one.

    Changes the block in place (a freshly loaded block, before any client is built from it: prefect-aws
    caches clients keyed on the block's fields, config included) and returns it.
    """
    params = credentials.aws_client_parameters
    config = dict(params.config or {})
    if "retries" not in config:
        config.update(client_config(env))
        params.config = config
    return credentials


def botocore_config(credentials: AwsCredentials):
    """A botocore ``Config`` with the block's (or our default) retry settings, for clients built outside the block."""
    from botocore.config import Config

    return Config(**(with_retries(credentials).aws_client_parameters.config or {}))


DEFAULT_BACKOFF_BASE_S = 1.0  # botocore's: the first retry waits rand(0, 1) s
DEFAULT_BACKOFF_CAP_S = 20.0  # botocore's cap
_BUDGET_MARK = "_insightflow_retry_budget"
_SPENT = "insightflow_retry_spent"  # per-call total in botocore's request context


def backoff_settings(env: Mapping[str, str] | None = None) -> tuple[float, float]:
    """``(base, cap)`` in seconds from ``INSIGHTFLOW_AWS_BACKOFF_BASE`` / ``INSIGHTFLOW_AWS_BACKOFF_CAP``."""
    env = os.environ if env is None else env
    values = []
    for name, default in (("BASE", DEFAULT_BACKOFF_BASE_S), ("CAP", DEFAULT_BACKOFF_CAP_S)):
        raw = env.get(f"INSIGHTFLOW_AWS_BACKOFF_{name}") or str(default)
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"INSIGHTFLOW_AWS_BACKOFF_{name} must be a number of seconds, not {raw!r}") from None
        if value <= 0:
            raise ValueError(f"INSIGHTFLOW_AWS_BACKOFF_{name} must be above 0, not {raw!r}")
        values.append(value)
    return values[0], values[1]


def retry_budget(client: Any, env: Mapping[str, str] | None = None) -> Any:
    """Give ``client`` (a boto3 client in ``standard`` or ``adaptive`` mode) a retry quota that does not starve.

    Same retry conditions and attempts as botocore's standard handler (read from the client's own
    config, so a block's stated retries still apply); the quota returns all a call spent when it
    succeeds, and backoff is full jitter from ``backoff_settings``. Idempotent; a ``legacy`` client
    (no quota) is returned unchanged. Returns ``client``.
    """
    if getattr(client, _BUDGET_MARK, False):
        return client
    retries = client.meta.config.retries or {}
    if retries.get("mode", DEFAULT_MODE) not in ("standard", "adaptive"):
        return client
    import random

    from botocore.retries import base, quota, standard

    base_s, cap_s = backoff_settings(env)

    class Backoff(base.BaseRetryBackoff):
        def delay_amount(self, context: Any) -> float:
            return random.random() * min(base_s * 2 ** (context.attempt_number - 1), cap_s)

    class RefundingQuota(standard.RetryQuotaChecker):
        """botocore's quota checker, but a call that ends in a 2xx gives back all it took, not its last retry."""

        def acquire_retry_quota(self, context: Any) -> bool:
            if not super().acquire_retry_quota(context):
                return False
            request = context.request_context
            request[_SPENT] = request.get(_SPENT, 0) + request["retry_quota_capacity"]
            return True

        def release_retry_quota(self, context: Any, http_response: Any, **kwargs: Any) -> None:
            if http_response is not None and 200 <= http_response.status_code < 300 and _SPENT in context:
                context["retry_quota_capacity"] = context.pop(_SPENT)
            super().release_retry_quota(context, http_response, **kwargs)

    attempts = retries.get("total_max_attempts") or standard.DEFAULT_MAX_ATTEMPTS
    budget = quota.RetryQuota()
    checker = RefundingQuota(budget)
    handler = standard.RetryHandler(
        retry_policy=standard.RetryPolicy(
            retry_checker=standard.StandardRetryConditions(max_attempts=attempts), retry_backoff=Backoff()
        ),
        retry_event_adapter=standard.RetryEventAdapter(),
        retry_quota=checker,
    )
    service = client.meta.service_model.service_id.hyphenize()
    events = client.meta.events
    # botocore registered its handler under this id (botocore/retries/standard.py register_retry_handler);
    # its after-call hook stays, feeding a quota nothing reads any more.
    events.unregister(f"needs-retry.{service}", unique_id=f"retry-config-{service}")
    events.register(f"needs-retry.{service}", handler.needs_retry, unique_id=f"retry-config-{service}")
    events.register(f"after-call.{service}", checker.release_retry_quota)
    setattr(client, _BUDGET_MARK, True)
    client.insightflow_retry_quota = budget  # for tests and debugging: its available_capacity
    return client


def aws_client(credentials: AwsCredentials, service: str) -> Any:
    """The block's (cached) boto3 client for ``service``, with the product's retry policy and budget."""
    return retry_budget(with_retries(credentials).get_client(service))
