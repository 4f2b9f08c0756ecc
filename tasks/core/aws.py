"""The retry policy of every AWS client the product builds (S3 lake, Glue catalog, Athena report reads).

Without a stated policy, botocore uses its ``legacy`` mode with 5 attempts, and anything in the
environment overrides it: with ``AWS_MAX_ATTEMPTS=1`` exported on a worker, one S3 ``SlowDown`` or Glue
``ThrottlingException`` failed the whole run (measured on moto behind a fault-injecting proxy, issue 20).
So the clients carry an explicit botocore ``Config``: ``standard`` mode (it retries throttling codes
such as SlowDown, ThrottlingException and TooManyRequestsException, 5xx and connection errors, with
exponential backoff and full jitter capped at 20 s, and a client-side retry quota so a real outage
does not become a retry storm) and 8 attempts in all, enough to ride out a throttling burst of about
a minute; the worst case before a persistent fault fails is the sum of those backoffs, about 1-2 min.

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
