"""``python -m automations apply [--block TYPE/NAME] [--dry-run]``: create or update the failure alerts.

Needs the alert block first (``python -m blocks register --only alerts``) and talks to the Prefect API
of the active profile or ``PREFECT_API_URL``. Idempotent: a second run reports every automation unchanged.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from uuid import UUID

from automations import DEPLOYMENTS, apply, definitions, resolve_alert_block


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m automations", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("apply", help="create or update one failure-alert automation per deployment")
    cmd.add_argument("--block", help="notification block as TYPE/NAME, e.g. slack-webhook/insightflow-alerts")
    cmd.add_argument("--deployment", action="append", choices=DEPLOYMENTS, help="only these deployments (default: all)")
    cmd.add_argument("--dry-run", action="store_true", help="print the definitions instead of applying them")
    args = parser.parse_args(argv)

    deployments = args.deployment or DEPLOYMENTS
    if args.dry_run:
        placeholder = UUID(int=0)  # no API call: the real block id is looked up on apply
        for automation in definitions(placeholder, deployments):
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
        for outcome in apply(client, definitions(block_id, deployments)):
            print(outcome)
    return 0


if __name__ == "__main__":
    sys.exit(main())
