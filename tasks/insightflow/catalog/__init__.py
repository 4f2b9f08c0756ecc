"""Catalog: make what was landed queryable through Glue (partitions from the contracts, or a crawler)."""
