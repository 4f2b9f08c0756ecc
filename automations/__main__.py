"""``python -m automations apply [--block TYPE/NAME] [--missed-window D=26h] [--hung-limit D=2h] [--heartbeat 30s] [--dry-run]``.

Creates or updates every alert: failed, missed and hung runs per deployment, and stale data; and the
automation that marks a run whose heartbeats stopped Crashed.

Needs the alert block first (``python -m blocks register --only alerts``) and talks to the Prefect API
of the active profile or ``PREFECT_API_URL``. Idempotent: a second run reports every automation unchanged.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import timedelta
from uuid import UUID

from automations.alerts import (
    DEPLOYMENTS,
    HEARTBEAT_SECONDS,
    HUNG_RUN_LIMITS,
    MISSED_RUN_WINDOWS,
    definitions,
    human_window,
    parse_window,
)
from automations.apply import apply, resolve_alert_block


def _deployment_window(value: str) -> tuple[str, object]:
    deployment, _, window = value.partition("=")
    if deployment not in DEPLOYMENTS:
        raise argparse.ArgumentTypeError(f"unknown deployment {deployment!r}; known: {', '.join(DEPLOYMENTS)}")
    try:
        return deployment, parse_window(window)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _duration(value: str) -> timedelta:
    try:
        return parse_window(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _defaults(table: dict) -> str:
    return ", ".join(f"{d}={human_window(w).replace(' ', '')}" for d, w in table.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m automations", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("apply", help="create or update the alert automations")
    cmd.add_argument("--block", help="notification block as TYPE/NAME, e.g. slack-webhook/insightflow-alerts")
    cmd.add_argument("--deployment", action="append", choices=DEPLOYMENTS, help="only these deployments (default: all)")
    cmd.add_argument(
        "--missed-window",
        type=_deployment_window,
        action="append",
        default=[],
        metavar="DEPLOYMENT=DURATION",
        help=f"alert when no run completed within this long (e.g. 26h, 20m); defaults: {_defaults(MISSED_RUN_WINDOWS)}",
    )
    cmd.add_argument(
        "--hung-limit",
        type=_deployment_window,
        action="append",
        default=[],
        metavar="DEPLOYMENT=DURATION",
        help=f"alert when a run is still Running after this long; defaults: {_defaults(HUNG_RUN_LIMITS)}",
    )
    cmd.add_argument(
        "--heartbeat",
        type=_duration,
        default=timedelta(seconds=HEARTBEAT_SECONDS),
        metavar="DURATION",
        help=(
            "the flows' heartbeat interval (PREFECT_FLOWS_HEARTBEAT_FREQUENCY where they run; default "
            f"{HEARTBEAT_SECONDS}s): a run silent for 5 of them is marked Crashed"
        ),
    )
    cmd.add_argument("--dry-run", action="store_true", help="print the definitions instead of applying them")
    args = parser.parse_args(argv)

    deployments = args.deployment or DEPLOYMENTS
    windows = {
        "missed_windows": dict(args.missed_window),
        "hung_limits": dict(args.hung_limit),
        "heartbeat": args.heartbeat,
    }
    if args.dry_run:
        placeholder = UUID(int=0)  # no API call: the real block id is looked up on apply
        for automation in definitions(placeholder, deployments, **windows):
            print(json.dumps(automation.model_dump(mode="json"), indent=2))
        return 0

    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        try:
            block_ref, block_id = resolve_alert_block(client, os.environ, args.block)
        except (LookupError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"notification block: {block_ref}")
        for outcome in apply(client, definitions(block_id, deployments, **windows)):
            print(outcome)
    return 0


if __name__ == "__main__":
    sys.exit(main())
