"""Alerts as Prefect automations: the definitions (``alerts``) and the code that applies them (``apply``)."""
