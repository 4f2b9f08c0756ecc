"""Flow retries of the daily InsightFlow flow, in-process on the session's real Prefect server.

The retry policy (tasks/core/orchestration.py) retries a run whose failure may clear by waiting and
fails at once on one that cannot. The sample source keeps its fault counters for the whole flow run,
so ``5xx:N`` is an outage of N requests: longer than one attempt's HTTP retries, shorter than two.
Expected counts come from the fault and the HTTP retry policy's attempts, not from the flow's code.
The served, alerting side (a retried run that succeeds sends no alert) is in tests/automations/test_dead_runs.py.
"""

from __future__ import annotations

import time

import pytest

pytestmark = [pytest.mark.deploy, pytest.mark.timeout(300)]

PATH = "/iowrt/iowrt.parquet"  # the sample server's path for dataset iowrt (tasks/insightflow/contracts.py)


@pytest.fixture
def retrying_flow(prefect_server):
    from flows.insightflow import insightflow

    return insightflow.with_options(retries=2, retry_delay_seconds=1)


def _states(run_id) -> list:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return sorted(client.read_flow_run_states(run_id), key=lambda s: s.timestamp)


def _run_count(run_id) -> int:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(run_id).run_count


def _sample_requests(path: str) -> list[int]:
    import tasks.insightflow.sample.server as module

    server = module._FOR_RUN[1]
    return [r["status"] for r in server.requests if r["path"] == path]


def test_a_transient_outage_past_the_http_retries_is_retried_and_the_run_completes(retrying_flow, tmp_path):
    from tasks.core.http import RetryPolicy

    http_attempts = RetryPolicy.from_env().attempts
    outage = http_attempts + 2  # the first attempt's requests all fail, the second's first two too
    state = retrying_flow(
        settings={"sample": True, "run_dbt": False, "home": str(tmp_path), "sample_faults": {"iowrt": f"5xx:{outage}"}},
        datasets=["iowrt"],
        return_state=True,
    )
    assert state.is_completed(), state
    run_id = state.state_details.flow_run_id
    assert _run_count(run_id) == 2
    assert _sample_requests(PATH) == [503] * outage + [200]
    names = [s.name for s in _states(run_id)]
    assert names.count("AwaitingRetry") == 1 and names[-1] == "Completed", names
    (waiting,) = [s for s in _states(run_id) if s.name == "AwaitingRetry"]
    # The state says what happens next and why: the attempt, the retry and the source's own fault.
    assert "attempt 1 of 3 failed; retry 1 of 2 at " in waiting.message, waiting.message
    assert "(in 1 s)" in waiting.message and "iowrt" in waiting.message and "503" in waiting.message


def test_a_permanent_fault_fails_at_once_without_waiting_for_a_retry(prefect_server, tmp_path):
    from flows.insightflow import insightflow

    flow = insightflow.with_options(retries=2, retry_delay_seconds=60)
    started = time.monotonic()
    state = flow(
        settings={"sample": True, "run_dbt": False, "home": str(tmp_path), "sample_faults": {"iowrt": "html"}},
        datasets=["iowrt"],
        return_state=True,
    )
    elapsed = time.monotonic() - started
    assert state.is_failed(), state
    assert elapsed < 60, f"waited for a retry of a broken payload ({elapsed:.0f} s)"
    run_id = state.state_details.flow_run_id
    assert _run_count(run_id) == 1
    assert "AwaitingRetry" not in [s.name for s in _states(run_id)]
    assert "IngestFailed" in state.message and "iowrt" in state.message and "HTML" in state.message, state.message


def test_the_last_attempt_fails_with_the_real_cause(prefect_server, tmp_path):
    from flows.insightflow import insightflow

    flow = insightflow.with_options(retries=1, retry_delay_seconds=1)
    state = flow(
        settings={"sample": True, "run_dbt": False, "home": str(tmp_path), "sample_faults": {"iowrt": "5xx"}},
        datasets=["iowrt"],
        return_state=True,
    )
    assert state.is_failed(), state
    run_id = state.state_details.flow_run_id
    assert _run_count(run_id) == 2
    assert state.message.startswith("Flow run encountered an exception: IngestFailed: 1 of 1 dataset(s)"), state.message
    assert "RetryingAfterFailure" not in state.message


def test_the_policy_is_the_documented_one_and_football_does_not_retry():
    from flows.football import football
    from tasks.core import orchestration

    assert (orchestration.FLOW_RETRIES, orchestration.FLOW_RETRY_DELAY_S) == (2, 600)
    assert football.retries == 0
