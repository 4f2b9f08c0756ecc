"""The InsightFlow wing: contracts, freshness and lineage at the top; rooms ingest, catalog, warehouse, report, sample."""
