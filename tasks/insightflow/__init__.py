"""The InsightFlow pipeline's steps: contracts, fetch, validate, land, catalog (Glue), athena, warehouse, sample."""
