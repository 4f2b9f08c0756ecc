"""The ``football`` block group: the football-data.org API token as a ``Secret`` named ``football-data-token``.

Read from ``FOOTBALL_DATA_TOKEN`` (free tokens: https://www.football-data.org/client/register).
The flow sends it only in the ``X-Auth-Token`` header; it is never printed or logged.
"""

from __future__ import annotations

from collections.abc import Mapping

from blocks import names
from blocks.registry import BlockPlan, GroupPlan, require

GROUP = "football"
TOKEN_BLOCK = names.FOOTBALL_DATA_TOKEN
HINT = "register for a free token at https://www.football-data.org/client/register; see docs/football.md"


def plan(env: Mapping[str, str]) -> GroupPlan:
    """The token Secret block from the environment, or the variable still missing."""
    missing = require(env, "FOOTBALL_DATA_TOKEN")
    if missing:
        return GroupPlan(GROUP, missing=missing, hint=HINT)

    from prefect.blocks.system import Secret

    return GroupPlan(GROUP, blocks=[BlockPlan(TOKEN_BLOCK, Secret(value=env["FOOTBALL_DATA_TOKEN"].strip()))])
