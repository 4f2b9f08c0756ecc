"""InsightFlow's tasks: one wing per pipeline over a shared core (see docs/architecture.md).

- ``tasks.core``: what both pipelines share (config, HTTP, the lake and its backends, locks, dbt).
- ``tasks.insightflow``: the steps of flows/insightflow.py, one module per step.
- ``tasks.football``: the steps of flows/football.py, one module per step.

A wing never imports the other wing; the core imports neither.
"""
