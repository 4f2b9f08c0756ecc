"""What both pipelines share: settings, HTTP with retries, the lake, locks, the dbt runner."""
