"""dbt for both pipelines: the runner, each node as a task run, node asset keys, the run context."""
