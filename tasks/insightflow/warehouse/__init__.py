"""Warehouse: decide whether dbt needs a build and run it, on DuckDB locally or Athena in production."""
