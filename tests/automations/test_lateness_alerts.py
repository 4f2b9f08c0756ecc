"""Lateness reaches the alert webhook: a missed run, a hung run and stale data, on a real server.

On the test session's ``prefect server start``, whose proactive triggers are evaluated every second
(``PREFECT_SERVER_EVENTS_PROACTIVE_GRANULARITY``, 5 s by default; tests/conftest.py), the test does what
docs/deploy.md (sections 4 and 7) tells an operator to do: ``python -m flows.serve --sample`` serves
the deployments of prefect.yaml, ``python -m blocks register --only alerts`` points the alert block at a
loopback webhook and
``python -m automations apply`` applies every alert, with the insightflow-daily windows shortened to
seconds. Then, in order:

1. nothing runs: the missed-run alert for insightflow-daily arrives once its window has passed;
2. a sample run, judged on a day when its newest month is older than the contract allows, waits on a
   slow source and so stays Running past the hung-run limit: the hung-run alert names it; it then ends
   Completed and alerts that the dataset is stale;
3. the next, unchanged run (HTTP 304) does not alert again.

Expected values are worked out here: the window and limit from the command line, the newest month from
the Parquet the run landed (read with pyarrow), its age with calendar arithmetic, and the allowed lag
from dbt's ``warn_after`` in the sources YAML.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pyarrow.dataset as ds
import pytest
import yaml

from tests.deploy.test_prefect_yaml import client_for, run_deployment, server_python
from tests.flows.test_serve import wait_for_deployments, wait_for_terminal
from tests.support.deploy import REPO_ROOT, E2EServer, Processes

MISSED_WINDOW_S = 12
HUNG_LIMIT_S = 10
SLOW_SOURCE_S = 15
AS_OF = date(2025, 11, 30)

pytestmark = [pytest.mark.deploy, pytest.mark.e2e, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def lateness_server(prefect_server, tmp_path_factory) -> Iterator[E2EServer]:
    """The session's server (no second server start); every automation made here is deleted after."""
    home = tmp_path_factory.mktemp("lateness")
    server = E2EServer(prefect_server, prefect_server.removesuffix("/api"), home, Processes(home))
    try:
        yield server
    finally:
        server.processes.stop_all()
        with client_for(server) as client:
            for automation in client.read_automations():
                if automation.name.startswith("insightflow-"):
                    client.delete_automation(automation.id)


def alerts_about(receiver, needle: str) -> list[dict]:
    """Distinct alerts whose subject has ``needle`` (a redelivered event repeats one word for word)."""
    return [m for m in receiver.distinct() if needle in m.get("subject", "")]


def wait_for_alert(receiver, needle: str, timeout: float) -> dict:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if found := alerts_about(receiver, needle):
            return found[0]
        time.sleep(0.2)
    raise AssertionError(f"no alert with {needle!r} within {timeout} s; got {receiver.messages}")


def dbt_warn_after_days(table: str) -> int:
    for path in (REPO_ROOT / "dbt" / "insightflow" / "models" / "staging").glob("*/_*__sources.yml"):
        for source in yaml.safe_load(path.read_text())["sources"]:
            if any(t["name"] == table for t in source["tables"]):
                return source["config"]["freshness"]["warn_after"]["count"]
    raise LookupError(table)


def newest_landed_month(lake: Path, dataset: str) -> date:
    table = ds.dataset(lake / "raw" / dataset, format="parquet", partitioning="hive").to_table(columns=["ymd_date"])
    return max(table.column("ymd_date").to_pylist())


def test_missed_hung_and_stale_reach_the_webhook_once_each(lateness_server, webhook_receiver, tmp_path):
    server, processes = lateness_server, lateness_server.processes
    timings: dict[str, float] = {}
    started = time.monotonic()
    serve_env = server.env(INSIGHTFLOW_HOME=str(tmp_path / "served-home"), INSIGHTFLOW_HTTP_TIMEOUT="60")
    serve = processes.start("serve", [sys.executable, "-m", "flows.serve", "--sample"], serve_env)
    alert_env = server.env(INSIGHTFLOW_ALERT_WEBHOOK_URL=webhook_receiver.url)
    server_python(server, ["-m", "blocks", "register", "--only", "alerts"], alert_env)
    served = wait_for_deployments(server, serve, timeout=180)
    assert served["insightflow-daily"].paused is False
    timings["serve start to deployments registered"] = time.monotonic() - started

    # 1. Missed run: served, scheduled for 05:00, nothing runs (this server's scheduler is off).
    applied_at = time.monotonic()
    window = f"insightflow-daily={MISSED_WINDOW_S}s"
    limit = f"insightflow-daily={HUNG_LIMIT_S}s"
    out = server_python(
        server, ["-m", "automations", "apply", "--missed-window", window, "--hung-limit", limit], alert_env
    )
    assert (
        out.count(": created") == 3 * len(yaml.safe_load((REPO_ROOT / "prefect.yaml").read_text())["deployments"]) + 3
    )
    missed = wait_for_alert(webhook_receiver, "insightflow-daily missed", timeout=MISSED_WINDOW_S + 45)
    timings["apply to missed-run alert"] = time.monotonic() - applied_at
    assert timings["apply to missed-run alert"] >= MISSED_WINDOW_S - 1, "fired before its window had passed"
    print(f"\nmissed-run alert:\n{missed['subject']}\n{missed['body']}")
    assert missed["subject"] == f"InsightFlow: insightflow-daily missed: no Completed run in {MISSED_WINDOW_S} s"
    assert "Deployment: insightflow-daily" in missed["body"] and "No Completed run was seen" in missed["body"]
    assert not alerts_about(webhook_receiver, "football"), "football's windows are minutes long"

    # 2. One sample run of iowrt judged on AS_OF, whose source answers after SLOW_SOURCE_S: Running past
    # the hung-run limit, then Completed (stale data is not a failure) with iowrt stale.
    home = tmp_path / "stale-home"
    params = {"datasets": ["iowrt"], "freshness_as_of": AS_OF.isoformat()}
    settings = {"sample": True, "run_dbt": False, "home": str(home)}
    t0 = time.monotonic()
    slow_id = run_deployment(
        server,
        "insightflow/insightflow-daily",
        settings={**settings, "sample_faults": {"iowrt": f"slow:{SLOW_SOURCE_S}"}},
        **params,
    )
    hung = wait_for_alert(webhook_receiver, "still Running", timeout=SLOW_SOURCE_S + 90)
    timings["run created to hung-run alert"] = time.monotonic() - t0
    with client_for(server) as client:
        slow = client.read_flow_run(slow_id)
    print(f"\nhung-run alert:\n{hung['subject']}\n{hung['body']}")
    assert hung["subject"] == f"InsightFlow: insightflow-daily run {slow.name} still Running after {HUNG_LIMIT_S} s"
    assert f"Run: {slow.name} ({slow.id})" in hung["body"] and "State now: Running" in hung["body"]
    (slow,) = wait_for_terminal(server, [slow_id], timeout=SLOW_SOURCE_S + 120)
    assert slow.state.type.value == "COMPLETED", slow.state
    assert (slow.end_time - slow.start_time).total_seconds() >= HUNG_LIMIT_S

    stale = wait_for_alert(webhook_receiver, "dataset iowrt is stale", timeout=60)
    timings["run created to stale alert"] = time.monotonic() - t0
    print(f"\nstale-data alert:\n{stale['subject']}\n{stale['body']}")
    newest = newest_landed_month(home / "lake", "iowrt")
    month_after = date(newest.year + newest.month // 12, newest.month % 12 + 1, 1)
    age, allowed = (AS_OF - month_after).days, dbt_warn_after_days("iowrt")
    assert age > allowed, "the test's as-of date must make the sample stale"
    assert f"Newest period: {newest:%Y-%m}, {age} days past its end (allowed {allowed})" in stale["body"]
    assert f"Judged as of {AS_OF.isoformat()}" in stale["body"] and f"Run: {slow.name}" in stale["body"]

    # 3. The same data again (the sample answers 304): still stale, not news.
    t0 = time.monotonic()
    second_id = run_deployment(server, "insightflow/insightflow-daily", settings=settings, **params)
    (second,) = wait_for_terminal(server, [second_id], timeout=180)
    timings["unchanged run, created to done"] = time.monotonic() - t0
    assert second.state.type.value == "COMPLETED", second.state
    time.sleep(3)  # a repeat would be right behind the run's end, as the first alert was
    assert len(alerts_about(webhook_receiver, "is stale")) == 1, [m["subject"] for m in webhook_receiver.messages]
    assert len(alerts_about(webhook_receiver, "still Running")) == 1
    assert not alerts_about(webhook_receiver, "Failed"), "no run failed"
    timings["test total"] = time.monotonic() - started
    print("\nlateness E2E timings (s): " + ", ".join(f"{k}: {v:.1f}" for k, v in timings.items()))
