"""Prefect blocks the flows read, and the planners that register them from the environment.

Each group module exposes ``plan(env) -> GroupPlan``; ``PLANNERS`` lists them in registration order.
Group modules are imported lazily so one provider's optional import never breaks another's.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from blocks.registry import GroupPlan

GROUP_MODULES = {
    "aws": "blocks.aws",
    "snowflake": "blocks.snowflake",
    "football": "blocks.football",
    "alerts": "blocks.alerts",
}


def _planner(module: str):
    def plan(env: Mapping[str, str]) -> GroupPlan:
        return importlib.import_module(module).plan(env)

    return plan


PLANNERS = {group: _planner(module) for group, module in GROUP_MODULES.items()}
