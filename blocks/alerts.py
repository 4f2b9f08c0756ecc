"""The ``alerts`` block group: the notification block the failure-alert automations send through.

One document named ``insightflow-alerts``, of the type the environment asks for:
- ``INSIGHTFLOW_ALERT_SLACK_WEBHOOK_URL``: a ``SlackWebhook`` (the URL is a secret: it is the credential).
- ``INSIGHTFLOW_ALERT_WEBHOOK_URL``: a ``CustomWebhookNotificationBlock`` that POSTs
  ``{"subject": ..., "body": ...}`` as JSON; ``INSIGHTFLOW_ALERT_WEBHOOK_TOKEN``, if set, is stored in the
  block's ``secrets`` and sent as ``Authorization: Bearer <token>``. Keep tokens out of the URL: the URL
  is stored in plain text.
Set one of the two. ``python -m automations apply`` then points the automations at this block.
"""

from __future__ import annotations

from collections.abc import Mapping

from blocks import names
from blocks.registry import BlockPlan, GroupPlan

GROUP = "alerts"
ALERT_BLOCK = names.ALERTS
SLACK_URL = "INSIGHTFLOW_ALERT_SLACK_WEBHOOK_URL"
WEBHOOK_URL = "INSIGHTFLOW_ALERT_WEBHOOK_URL"
WEBHOOK_TOKEN = "INSIGHTFLOW_ALERT_WEBHOOK_TOKEN"
# Block type slugs, in the order `alert_block_type` prefers them.
SLACK_TYPE = "slack-webhook"
WEBHOOK_TYPE = "custom-webhook"
BLOCK_TYPES = (SLACK_TYPE, WEBHOOK_TYPE)

HINT = "one of them: Slack incoming webhook, or any HTTPS endpoint that accepts JSON; see docs/deploy.md"


def alert_block_type(env: Mapping[str, str]) -> str | None:
    """The block type slug the environment configures, or None when neither URL is set."""
    slack, webhook = env.get(SLACK_URL), env.get(WEBHOOK_URL)
    if slack and webhook:
        raise ValueError(f"set only one of {SLACK_URL} and {WEBHOOK_URL}: both name the alert channel")
    if slack:
        return SLACK_TYPE
    return WEBHOOK_TYPE if webhook else None


def plan(env: Mapping[str, str]) -> GroupPlan:
    """The alerts group's block from the environment, or the variables still missing."""
    block_type = alert_block_type(env)
    if block_type is None:
        return GroupPlan(GROUP, missing=[f"{SLACK_URL} or {WEBHOOK_URL}"], hint=HINT)

    if block_type == SLACK_TYPE:
        from prefect.blocks.notifications import SlackWebhook

        return GroupPlan(GROUP, blocks=[BlockPlan(ALERT_BLOCK, SlackWebhook(url=env[SLACK_URL]))])

    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    token = env.get(WEBHOOK_TOKEN)
    block = CustomWebhookNotificationBlock(
        name=ALERT_BLOCK,
        url=env[WEBHOOK_URL],
        method="POST",
        json_data={"subject": "{{subject}}", "body": "{{body}}"},
        # The block only substitutes `{{token}}` from `secrets`, so the token never sits in plain fields.
        headers={"Authorization": "Bearer {{token}}"} if token else None,
        secrets={"token": token} if token else {},
        timeout=10,
    )
    return GroupPlan(GROUP, blocks=[BlockPlan(ALERT_BLOCK, block)])
