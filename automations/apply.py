"""Apply the alert definitions (automations/alerts.py) to a Prefect server, idempotently.

``Automation.create()`` duplicates by name, so ``apply`` reads by name first and creates, updates or
leaves each automation alone; running it twice changes nothing. A paused automation stays paused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from prefect.events.schemas.automations import AutomationCore

from blocks.alerts import ALERT_BLOCK, BLOCK_TYPES, alert_block_type


def _comparable(automation: Any) -> dict:
    """An automation's user-visible definition, without server ids, for an equality check."""
    data = AutomationCore.model_validate(automation.model_dump(exclude={"id", "created", "updated"})).model_dump(
        mode="json", exclude={"owner_resource"}
    )

    def drop_ids(trigger: dict) -> dict:
        trigger = {k: v for k, v in trigger.items() if k != "id"}
        if "triggers" in trigger:
            trigger["triggers"] = [drop_ids(t) for t in trigger["triggers"]]
        return trigger

    data["trigger"] = drop_ids(data["trigger"])
    data["tags"] = sorted(data.get("tags") or [])
    for key in ("expect", "after", "for_each"):
        data["trigger"][key] = sorted(data["trigger"].get(key) or [])
    return data


@dataclass
class Outcome:
    name: str
    outcome: str  # created | updated | unchanged
    removed_duplicates: int = 0

    def __str__(self) -> str:
        extra = f" (removed {self.removed_duplicates} duplicate(s))" if self.removed_duplicates else ""
        return f"automation/{self.name}: {self.outcome}{extra}"


def resolve_alert_block(client, env: Mapping[str, str], block_ref: str | None = None) -> tuple[str, UUID]:
    """The ``type-slug/name`` and id of the notification block to send through.

    ``block_ref`` (``slack-webhook/insightflow-alerts``) wins; else the type the environment configures
    (as ``python -m blocks register`` does); else whichever ``insightflow-alerts`` document exists.
    """
    from prefect.exceptions import ObjectNotFound

    if block_ref:
        slug, _, name = block_ref.partition("/")
        candidates = [(slug, name or ALERT_BLOCK)]
    elif configured := alert_block_type(env):
        candidates = [(configured, ALERT_BLOCK)]
    else:
        candidates = [(slug, ALERT_BLOCK) for slug in BLOCK_TYPES]

    found = []
    for slug, name in candidates:
        try:
            found.append((f"{slug}/{name}", client.read_block_document_by_name(name, slug, include_secrets=False).id))
        except ObjectNotFound:
            continue
    if not found:
        wanted = " or ".join(f"{s}/{n}" for s, n in candidates)
        raise LookupError(f"no notification block {wanted}: run `python -m blocks register --only alerts` first")
    if len(found) > 1:
        raise LookupError(
            f"both {found[0][0]} and {found[1][0]} exist: pass --block TYPE/NAME or set exactly one of the "
            "INSIGHTFLOW_ALERT_*_URL variables"
        )
    return found[0]


def apply(client, desired: Iterable[AutomationCore]) -> list[Outcome]:
    """Create, update or leave alone each automation, matched by name; extra same-named copies are deleted."""
    outcomes = []
    for automation in desired:
        existing = client.read_automations_by_name(automation.name)
        if not existing:
            client.create_automation(automation)
            outcomes.append(Outcome(automation.name, "created"))
            continue
        keep, duplicates = existing[0], existing[1:]
        for duplicate in duplicates:
            client.delete_automation(duplicate.id)
        # Pausing an alert in the UI or CLI is an operator's decision: apply keeps it paused.
        automation = automation.model_copy(update={"enabled": keep.enabled})
        if _comparable(keep) == _comparable(automation):
            outcomes.append(Outcome(automation.name, "unchanged", len(duplicates)))
        else:
            client.update_automation(keep.id, automation)
            outcomes.append(Outcome(automation.name, "updated", len(duplicates)))
    return outcomes
