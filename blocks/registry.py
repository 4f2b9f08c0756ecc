"""Declarative block registration: each module in ``blocks/`` describes the block documents it owns.

A *group* (aws, snowflake, football, alerts) reads the environment and either returns the blocks to
save or says which variables are missing. ``python -m blocks register`` saves every group that is
fully configured, skips the rest with an explanation, never prints a secret, and is idempotent:
a block whose stored fields already match is left untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from prefect.blocks.core import Block


@dataclass
class BlockPlan:
    """One block document to create or update."""

    name: str
    block: Block


@dataclass
class GroupPlan:
    """What one group would register, or why it cannot."""

    group: str
    blocks: list[BlockPlan] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    hint: str = ""

    @property
    def ready(self) -> bool:
        return not self.missing


# A group planner reads the environment (never prompts) and returns its plan.
Planner = Callable[[Mapping[str, str]], GroupPlan]


def require(env: Mapping[str, str], *names: str) -> list[str]:
    """The names among ``names`` that are unset or empty in ``env``."""
    return [n for n in names if not env.get(n)]


def _comparable(block: Block) -> dict:
    """A block's stored fields, secrets revealed, for an equality check that never leaves this process."""
    from pydantic import SecretBytes, SecretStr

    def reveal(value):
        if isinstance(value, (SecretStr, SecretBytes)):
            return value.get_secret_value()
        if isinstance(value, Block):
            return {"__block__": type(value).get_block_type_slug(), **_comparable(value)}
        if isinstance(value, dict):
            return {k: reveal(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [reveal(v) for v in value]
        if hasattr(value, "model_dump"):
            return reveal({k: getattr(value, k) for k in type(value).model_fields})
        return value

    return {k: reveal(getattr(block, k)) for k in type(block).model_fields if not k.startswith("_")}


def save_block(plan: BlockPlan) -> str:
    """Create or update one block document; returns 'created', 'updated' or 'unchanged'."""
    block_cls = type(plan.block)
    try:
        existing = block_cls.load(plan.name, validate=False)
    except ValueError:
        existing = None
    if existing is not None and _comparable(existing) == _comparable(plan.block):
        return "unchanged"
    plan.block.save(plan.name, overwrite=True)
    return "created" if existing is None else "updated"


def register(
    planners: Mapping[str, Planner], env: Mapping[str, str], only: set[str] | None = None
) -> tuple[list[str], int]:
    """Register every ready group; returns report lines (no secrets) and the number of blocks saved or checked."""
    lines: list[str] = []
    handled = 0
    for group, planner in planners.items():
        if only and group not in only:
            continue
        plan = planner(env)
        if not plan.ready:
            lines.append(f"[{group}] skipped: set {', '.join(plan.missing)}" + (f" ({plan.hint})" if plan.hint else ""))
            continue
        for item in plan.blocks:
            outcome = save_block(item)
            handled += 1
            lines.append(f"[{group}] {type(item.block).get_block_type_slug()}/{item.name}: {outcome}")
    return lines, handled
