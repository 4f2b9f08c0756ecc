"""``python -m flows.serve [--sample]``: serve the deployments of prefect.yaml from this process, without Docker.

prefect.yaml deploys to ECS, which takes an image, a registry, a work pool and a worker. Prefect's own
way to run deployments on a laptop is a long-running process that registers them and executes their
runs itself (``flow.to_deployment`` + ``prefect.serve``). The deployments are built from prefect.yaml,
so names, schedules, concurrency limits, descriptions and tags cannot drift from production; only the
parameters change: ``target=dev`` (local lake and DuckDB under ``$INSIGHTFLOW_HOME``) and, with
``--sample``, the offline sample data (``settings.sample``).

A ``{{ $VAR }}`` in those fields takes the variable's value, or ``local`` when it is unset (``prefect
deploy`` would put an empty string there). Any other template (blocks, variables, build outputs) is
refused: a served deployment has nothing to resolve it with.

It needs a running Prefect server (``prefect server start`` and ``PREFECT_API_URL``): a temporary API
would vanish with this process, taking the dashboard and the run history with it. It refuses a server
where these deployments already run on a work pool (production): serving would take them over.
Ctrl-C or SIGTERM stops it: Prefect pauses the served schedules (the next start resumes them) and runs
still in progress are marked Cancelled.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from prefect import serve
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterName,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import ConcurrencyLimitConfig, StateType
from prefect.deployments.runner import RunnerDeployment
from prefect.exceptions import ObjectNotFound
from prefect.flows import load_flow_from_entrypoint
from prefect.schedules import Schedule
from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL
from prefect.states import Cancelled
from prefect.utilities.templating import PlaceholderType, find_placeholders

from tasks.core import orchestration

PREFECT_YAML = Path(__file__).resolve().parent.parent / "prefect.yaml"
UNSET_ENV_VALUE = "local"
NEEDS_SERVER = (
    "python -m flows.serve needs a Prefect server: start one with `prefect server start` and set "
    "PREFECT_API_URL=http://127.0.0.1:4200/api"
)


def read_deployments(path: Path = PREFECT_YAML) -> list[dict[str, Any]]:
    return yaml.safe_load(path.read_text())["deployments"]


def resolve_local(value: Any, where: str) -> Any:
    """``value`` with each ``{{ $VAR }}`` replaced by the variable or ``local``; other templates refused."""
    if isinstance(value, dict):
        return {k: resolve_local(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_local(v, where) for v in value]
    if not isinstance(value, str):
        return value
    for placeholder in find_placeholders(value):
        if placeholder.type is not PlaceholderType.ENV_VAR:
            raise ValueError(f"prefect.yaml {where}: {placeholder.full_match} cannot be resolved when serving locally")
        value = value.replace(placeholder.full_match, os.environ.get(placeholder.name[1:], UNSET_ENV_VALUE))
    return value


def to_schedule(item: dict[str, Any]) -> Schedule:
    """A prefect.yaml schedule item (cron, interval in seconds or rrule, plus options) as a Prefect Schedule."""
    if isinstance(item.get("interval"), (int, float)):
        item = {**item, "interval": timedelta(seconds=item["interval"])}
    return Schedule(**item)


def local_deployment(spec: dict[str, Any], sample: bool = False, root: Path = PREFECT_YAML.parent) -> RunnerDeployment:
    """The prefect.yaml deployment ``spec`` as a served deployment on the local target."""
    name = spec["name"]
    local = {
        key: resolve_local(spec.get(key), f"{name}.{key}") for key in ("description", "tags", "schedules", "parameters")
    }
    limit = spec.get("concurrency_limit")
    flow = load_flow_from_entrypoint(str(root / spec["entrypoint"]))
    return flow.to_deployment(
        name=name,
        description=local["description"],
        tags=local["tags"],
        schedules=[to_schedule(item) for item in local["schedules"] or []],
        concurrency_limit=ConcurrencyLimitConfig(**limit) if isinstance(limit, dict) else limit,
        parameters=local_parameters(local["parameters"] or {}, sample),
    )


def local_parameters(parameters: dict[str, Any], sample: bool = False) -> dict[str, Any]:
    """A deployment's parameters on the local target; with ``sample``, its settings ask for the offline sample."""
    local = {**parameters, "target": "dev"}
    if sample:
        local["settings"] = {**(local.get("settings") or {}), "sample": True}
    return local


def server_problem() -> str | None:
    """Why no Prefect server can be used, or None when one answers."""
    api_url = PREFECT_API_URL.value()
    if not api_url:
        return NEEDS_SERVER
    with get_client(sync_client=True) as client:
        error = client.api_healthcheck()
    if error is not None:
        return f"no Prefect server answers at {api_url} ({type(error).__name__}): start it with `prefect server start`"
    return None


def on_work_pools(client: SyncPrefectClient, deployments: list[RunnerDeployment]) -> list[str]:
    """The deployments that already exist on this server with a work pool, as ``flow/name (pool)``."""
    found = []
    for deployment in deployments:
        full_name = f"{deployment.flow_name}/{deployment.name}"
        try:
            existing = client.read_deployment_by_name(full_name)
        except ObjectNotFound:
            continue
        if existing.work_pool_name:
            found.append(f"{full_name} (work pool {existing.work_pool_name})")
    return found


def cancel_interrupted_runs(client: SyncPrefectClient, deployments: list[RunnerDeployment]) -> list[str]:
    """Mark runs of the served deployments still Pending or Running as Cancelled; return their names.

    Served runs live only in this process. Prefect 3.8.8 ends them with it but leaves them Running in
    the API, where they would hold the deployment's concurrency slot until its lease runs out (5 min).
    """
    runs = client.read_flow_runs(
        deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[d.name for d in deployments])),
        flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PENDING, StateType.RUNNING]))
        ),
    )
    for run in runs:
        client.set_flow_run_state(
            run.id, Cancelled(message="python -m flows.serve stopped during this run"), force=True
        )
    return [run.name for run in runs]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--sample", action="store_true", help="run on the offline sample data (settings.sample=true)")
    args = parser.parse_args(argv)

    if problem := server_problem():
        print(problem, file=sys.stderr)
        return 2
    deployments = [local_deployment(spec, sample=args.sample) for spec in read_deployments()]
    with get_client(sync_client=True) as client:
        if taken := on_work_pools(client, deployments):
            print(
                f"not serving on {PREFECT_API_URL.value()}: {', '.join(taken)} already deployed there; "
                "serving would replace them. Use a local server (`prefect server start`).",
                file=sys.stderr,
            )
            return 2

    data = "the offline sample" if args.sample else "live sources"
    print(f"Serving {len(deployments)} deployments from prefect.yaml on target dev ({data}); Ctrl-C stops.")
    for deployment in deployments:
        print(f"  {deployment.flow_name}/{deployment.name}")
    print(f"Dashboard: {PREFECT_UI_URL.value()}/deployments")
    print(f"Run one now: prefect deployment run {deployments[0].flow_name}/{deployments[0].name}", flush=True)
    # Prefect 3.8.8's SIGTERM handler calls the async-dispatched Runner.stop() from inside the event loop,
    # which only creates a coroutine (a RuntimeWarning when it is collected); its sys.exit(0) then shuts
    # the runner down, and cancel_interrupted_runs does what stop() would have done for running flows.
    warnings.filterwarnings("ignore", message="coroutine 'Runner.astop' was never awaited", category=RuntimeWarning)
    # Each run is a child process: heartbeats every 30 s (the crash automation turns a silent run into
    # Crashed) and API-outage retries, as in the image (tasks/core/orchestration.py); a value already in
    # the environment wins.
    for name, value in orchestration.RUNTIME_ENV.items():
        os.environ.setdefault(name, value)
    try:
        serve(*deployments, print_starting_message=False)
    finally:  # Ctrl-C returns from serve(); SIGTERM raises SystemExit(0) through it
        with get_client(sync_client=True) as client:
            if cancelled := cancel_interrupted_runs(client, deployments):
                print(f"Cancelled the runs this process was executing: {', '.join(cancelled)}", flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C before serving started; once serving, Prefect handles it
        sys.exit(130)
