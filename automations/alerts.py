"""The alert definitions: what each automation watches and says; all notify through ``insightflow-alerts``.

Per deployment in prefect.yaml, three kinds (the runbook for each is docs/operations.md):

- **failure**: a flow run ends Failed, Crashed or TimedOut (reactive). The text names the flow, the
  deployment, the run, its state message (for a dbt build, the failed tests) and a link to the run.
- **missed run**: no run of the deployment reached Completed within its window (proactive). The window
  restarts at each Completed run (the trigger's ``after`` and ``expect`` are both Completed, which
  Prefect's trigger service treats as a heartbeat), and the service opens one whenever none is open, so a
  deployment that never completes alerts too; it repeats every other window while runs stay missing.
- **hung run**: a run entered Running and reached no final state within its limit (proactive, one
  window per flow run, opened by that run's Running event).

And one that acts rather than notifies: **crash unresponsive runs** marks a run of either flow Crashed
when its heartbeats stop (no ``prefect.flow-run.heartbeat`` and no final state for five heartbeat
intervals: the process running it died; five, so that a 2-minute API outage is not taken for a death); the failure alert then fires for it and its deployment's
concurrency slot is freed. Runs emit heartbeats every ``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` seconds
(tasks/core/orchestration.py); ``--heartbeat`` must match that setting.

And two for the data: **stale data**, a run emitted ``insightflow.dataset.stale`` (tasks/insightflow/
freshness.py; once per stale state, not per run), and **stale standings**, a football tick emitted
``football.standings.stale`` (tasks/football/freshness.py: in season, no new matchday while the season's
calendar says fixtures were due; once per season and matchday).

Proactive triggers are evaluated on the server every ``PREFECT_SERVER_EVENTS_PROACTIVE_GRANULARITY``
(5 s by default); ``within`` must be at least 10 s. prefect.yaml cannot declare any of these: its
``triggers`` only run deployments.

How they reach the server: automations/apply.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import timedelta
from uuid import UUID

from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState, SendNotification
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

from blocks.alerts import ALERT_BLOCK
from tasks.core.orchestration import CRASH_AFTER_HEARTBEATS, HEARTBEAT_SECONDS
from tasks.football.freshness import STALE_EVENT as FOOTBALL_STALE_EVENT  # the events the flows emit, named
from tasks.insightflow.freshness import STALE_EVENT  # where they are emitted

# Deployment names as in prefect.yaml (tests/deploy/test_files.py keeps the two in step).
DEPLOYMENTS = ("insightflow-daily", "football-standings", "football-full-check")
FAILURE_EVENTS = ("prefect.flow-run.Failed", "prefect.flow-run.Crashed", "prefect.flow-run.TimedOut")
FINAL_EVENTS = (*FAILURE_EVENTS, "prefect.flow-run.Completed", "prefect.flow-run.Cancelled")
COMPLETED = "prefect.flow-run.Completed"
TAG = "insightflow"

# How long each deployment may go without a Completed run: its schedule's period plus slack (daily
# at 05:00 plus two hours; every five minutes, so four ticks in a row). Override with --missed-window.
MISSED_RUN_WINDOWS = {
    "insightflow-daily": timedelta(hours=26),
    "football-standings": timedelta(minutes=20),
    "football-full-check": timedelta(hours=26),
}
# How long a run may stay Running: about ten times a normal run (docs/performance.md: the daily run
# takes minutes, a football tick seconds, a full check a few minutes). Override with --hung-limit.
HUNG_RUN_LIMITS = {
    "insightflow-daily": timedelta(hours=2),
    "football-standings": timedelta(minutes=10),
    "football-full-check": timedelta(hours=1),
}

# Sandboxed Jinja rendered by the server when the automation fires; `flow`, `flow_run` and
# `deployment` are fetched lazily from the event's related resources. `ui_url` is None unless the
# server knows its UI address (PREFECT_UI_URL; always set on Prefect Cloud).
SUBJECT = "InsightFlow: {{ deployment.name }} run {{ flow_run.name }} {{ flow_run.state.name }}"
BODY = """\
Flow: {{ flow.name }}
Deployment: {{ deployment.name }}
Run: {{ flow_run.name }} ({{ flow_run.id }})
State: {{ flow_run.state.name }}
Message: {{ flow_run.state.message }}
Parameters: {{ flow_run.parameters | tojson }}
Run in the UI: {{ flow_run | ui_url or "unavailable: set PREFECT_UI_URL on the Prefect server" }}"""


MISSED_SUBJECT = "InsightFlow: {deployment} missed: no Completed run in {window}"
MISSED_BODY = """\
Deployment: {deployment}
Missing: a Completed run. None was seen in the last {window} (the window restarts at each Completed run).
{{% if event and event.event == "prefect.flow-run.Completed" %}}Last Completed run: \
{{{{ event.resource.get("prefect.resource.name") }}}} at {{{{ event.occurred }}}}
{{% else %}}No Completed run was seen since this alert was applied or last fired.
{{% endif %}}Fired at: {{{{ firing.triggered if firing else "now" }}}}
Runbook: docs/operations.md#missed-run"""
HUNG_SUBJECT = "InsightFlow: {deployment} run {{{{ flow_run.name }}}} still Running after {limit}"
HUNG_BODY = """\
Flow: {{{{ flow.name }}}}
Deployment: {deployment}
Run: {{{{ flow_run.name }}}} ({{{{ flow_run.id }}}})
Missing: a final state. Running since {{{{ event.occurred }}}}, no Completed, Failed, Crashed, Cancelled \
or TimedOut within {limit}.
State now: {{{{ flow_run.state.name }}}}
Run in the UI: {{{{ flow_run | ui_url or "unavailable: set PREFECT_UI_URL on the Prefect server" }}}}
Runbook: docs/operations.md#hung-run"""
STALE_SUBJECT = "InsightFlow: dataset {{ event.resource.get('prefect.resource.name') }} is stale"
STALE_BODY = """\
Dataset: {{ event.resource.get('prefect.resource.name') }} ({{ event.payload.cadence }})
Missing: newer data. {{ event.payload.reason }}
Newest period: {{ event.payload.newest_period }}, {{ event.payload.age_days }} days past its end \
(allowed {{ event.payload.allowed_days }})
Source unchanged for: {{ event.payload.source_unchanged_days }} days (allowed {{ event.payload.unchanged_allowed_days }})
Judged as of {{ event.payload.as_of }} ({{ event.payload.judged_against }})
{% if flow_run %}Run: {{ flow_run.name }} ({{ flow_run.id }})
{% endif %}Runbook: docs/operations.md#stale-data"""
STALE_ALERT = "insightflow-stale-data-alert"
FOOTBALL_STALE_SUBJECT = (
    "InsightFlow: football {{ event.resource.get('prefect.resource.name') }} standings stale: "
    "no new matchday in {{ event.payload.days_without_new_matchday }} days"
)
FOOTBALL_STALE_BODY = """\
Competition: {{ event.resource.get('prefect.resource.name') }}, season {{ event.payload.season }} \
({{ event.payload.season_start }} to {{ event.payload.season_end }})
Missing: a new matchday. {{ event.payload.reason }}
Matchday: {{ event.payload.current_matchday }} of {{ event.payload.matchdays }}, first seen \
{{ event.payload.matchday_since }}; the season's calendar is at matchday {{ event.payload.calendar_matchday }}
Judged as of {{ event.payload.as_of }} (allowed {{ event.payload.allowed_days }} days without a new matchday)
{% if flow_run %}Run: {{ flow_run.name }} ({{ flow_run.id }})
{% endif %}Runbook: docs/operations.md#stale-football-standings"""
FOOTBALL_STALE_ALERT = "insightflow-football-stale-alert"
CRASH_AUTOMATION = "insightflow-crash-unresponsive-runs"
FLOWS = ("insightflow", "football")  # the flows' names (flows/*.py): heartbeats name the flow, not the deployment
HEARTBEAT = "prefect.flow-run.heartbeat"
# A run that stops heartbeating for one of these reasons is not dead: a final state, or waiting for a
# flow retry (AwaitingRetry; no heartbeats until the next attempt starts).
HEARTBEAT_ENDS = (*FINAL_EVENTS, "prefect.flow-run.AwaitingRetry", "prefect.flow-run.Paused")
CRASH_MESSAGE = (
    "No heartbeat for {window}: the process running this flow run stopped (killed, out of memory, its "
    "container or machine lost). Marked Crashed by automation {name}; runbook: docs/operations.md#crashed-run"
)


def automation_name(deployment: str, kind: str = "failure") -> str:
    return f"insightflow-{kind}-alert-{deployment}"


def human_window(window: timedelta) -> str:
    seconds = int(window.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds % size == 0 and seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def parse_window(text: str) -> timedelta:
    """``26h``, ``20m``, ``90s``, ``2d`` or plain seconds as a timedelta."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (e.g. 26h, 20m, 90s)")
    unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    return timedelta(seconds=float(match.group(1)) * unit)


def failure_alert(deployment: str, block_document_id: UUID) -> AutomationCore:
    """The automation that notifies through ``block_document_id`` when a run of ``deployment`` fails."""
    return AutomationCore(
        name=automation_name(deployment),
        description=(
            f"Notify through the {ALERT_BLOCK!r} block when a flow run of deployment {deployment!r} "
            "ends Failed, Crashed or TimedOut. Managed by `python -m automations apply`: edits in the UI "
            "other than pausing are overwritten on the next apply."
        ),
        enabled=True,
        tags=[TAG],
        trigger=EventTrigger(
            expect=set(FAILURE_EVENTS),
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.role": "deployment", "prefect.resource.name": deployment},
            posture=Posture.Reactive,
            threshold=1,
        ),
        actions=[SendNotification(block_document_id=block_document_id, subject=SUBJECT, body=BODY)],
    )


def _by_deployment(deployment: str) -> dict:
    return {"prefect.resource.role": "deployment", "prefect.resource.name": deployment}


def missed_run_alert(deployment: str, block_document_id: UUID, window: timedelta) -> AutomationCore:
    """Notify when no run of ``deployment`` reached Completed within ``window``."""
    text = {"deployment": deployment, "window": human_window(window)}
    return AutomationCore(
        name=automation_name(deployment, "missed-run"),
        description=(
            f"Notify through the {ALERT_BLOCK!r} block when no flow run of deployment {deployment!r} reached "
            f"Completed within {human_window(window)} (worker down, pool or schedule paused, runs stuck Late). "
            "Managed by `python -m automations apply`."
        ),
        enabled=True,
        tags=[TAG],
        trigger=EventTrigger(
            after={COMPLETED},
            expect={COMPLETED},
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related=_by_deployment(deployment),
            posture=Posture.Proactive,
            threshold=1,
            within=window,
        ),
        actions=[
            SendNotification(
                block_document_id=block_document_id,
                subject=MISSED_SUBJECT.format(**text),
                body=MISSED_BODY.format(**text),
            )
        ],
    )


def hung_run_alert(deployment: str, block_document_id: UUID, limit: timedelta) -> AutomationCore:
    """Notify when a run of ``deployment`` stays Running (no final state) for longer than ``limit``."""
    text = {"deployment": deployment, "limit": human_window(limit)}
    return AutomationCore(
        name=automation_name(deployment, "hung-run"),
        description=(
            f"Notify through the {ALERT_BLOCK!r} block when a flow run of deployment {deployment!r} is still "
            f"Running {human_window(limit)} after it started. Managed by `python -m automations apply`."
        ),
        enabled=True,
        tags=[TAG],
        trigger=EventTrigger(
            after={"prefect.flow-run.Running"},
            expect=set(FINAL_EVENTS),
            for_each={"prefect.resource.id"},
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related=_by_deployment(deployment),
            posture=Posture.Proactive,
            threshold=1,
            within=limit,
        ),
        actions=[
            SendNotification(
                block_document_id=block_document_id,
                subject=HUNG_SUBJECT.format(**text),
                body=HUNG_BODY.format(**text),
            )
        ],
    )


def stale_data_alert(block_document_id: UUID) -> AutomationCore:
    """Notify on every ``insightflow.dataset.stale`` event (the flow emits one per stale state)."""
    return AutomationCore(
        name=STALE_ALERT,
        description=(
            f"Notify through the {ALERT_BLOCK!r} block when an InsightFlow run finds a dataset whose newest "
            "period is older than its contract allows, or whose source has not changed for too long. "
            "Managed by `python -m automations apply`."
        ),
        enabled=True,
        tags=[TAG],
        trigger=EventTrigger(
            expect={STALE_EVENT},
            match={"prefect.resource.id": "insightflow.dataset.*"},
            posture=Posture.Reactive,
            threshold=1,
        ),
        actions=[SendNotification(block_document_id=block_document_id, subject=STALE_SUBJECT, body=STALE_BODY)],
    )


def football_stale_alert(block_document_id: UUID) -> AutomationCore:
    """Notify on every ``football.standings.stale`` event (the flow emits one per season and matchday)."""
    return AutomationCore(
        name=FOOTBALL_STALE_ALERT,
        description=(
            f"Notify through the {ALERT_BLOCK!r} block when a football tick finds, in season, a competition "
            "whose matchday has not moved for too long while its calendar says fixtures were due. "
            "Managed by `python -m automations apply`."
        ),
        enabled=True,
        tags=[TAG],
        trigger=EventTrigger(
            expect={FOOTBALL_STALE_EVENT},
            match={"prefect.resource.id": "football.competition.*"},
            posture=Posture.Reactive,
            threshold=1,
        ),
        actions=[
            SendNotification(
                block_document_id=block_document_id, subject=FOOTBALL_STALE_SUBJECT, body=FOOTBALL_STALE_BODY
            )
        ],
    )


def crash_unresponsive_runs(heartbeat: timedelta = timedelta(seconds=HEARTBEAT_SECONDS)) -> AutomationCore:
    """Mark a flow run Crashed when no heartbeat and no final state arrived for five heartbeats.

    Prefect's "detect zombie flows" automation (docs.prefect.io/v3/advanced/detect-zombie-flows), for
    this project's flows only. One window per flow run (``for_each``), opened by its first heartbeat and
    restarted by each next one.
    """
    window = heartbeat * CRASH_AFTER_HEARTBEATS
    return AutomationCore(
        name=CRASH_AUTOMATION,
        description=(
            f"Mark a run of flow {' or '.join(FLOWS)} Crashed when it sent no heartbeat for "
            f"{human_window(window)} ({CRASH_AFTER_HEARTBEATS} heartbeats of {human_window(heartbeat)}): its "
            "process died. The failure alert then fires and the deployment's concurrency slot frees. "
            "Managed by `python -m automations apply`."
        ),
        enabled=True,
        tags=[TAG],
        trigger=EventTrigger(
            after={HEARTBEAT},
            expect={HEARTBEAT, *HEARTBEAT_ENDS},
            for_each={"prefect.resource.id"},
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.role": "flow", "prefect.resource.name": list(FLOWS)},
            posture=Posture.Proactive,
            threshold=1,
            within=window,
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                name="Crashed",
                message=CRASH_MESSAGE.format(window=human_window(window), name=CRASH_AUTOMATION),
            )
        ],
    )


def definitions(
    block_document_id: UUID,
    deployments: Iterable[str] = DEPLOYMENTS,
    missed_windows: Mapping[str, timedelta] | None = None,
    hung_limits: Mapping[str, timedelta] | None = None,
    heartbeat: timedelta = timedelta(seconds=HEARTBEAT_SECONDS),
) -> list[AutomationCore]:
    """Every alert: failure, missed run and hung run per deployment, the stale-data alert, then the
    automation that marks runs whose heartbeats stopped Crashed."""
    missed = {**MISSED_RUN_WINDOWS, **(missed_windows or {})}
    hung = {**HUNG_RUN_LIMITS, **(hung_limits or {})}
    built = []
    for d in deployments:
        built.append(failure_alert(d, block_document_id))
        built.append(missed_run_alert(d, block_document_id, missed[d]))
        built.append(hung_run_alert(d, block_document_id, hung[d]))
    return [
        *built,
        stale_data_alert(block_document_id),
        football_stale_alert(block_document_id),
        crash_unresponsive_runs(heartbeat),
    ]
