"""The football pipeline's steps: api (fetch, validate, land raw JSON), load (DuckDB / Snowflake COPY INTO), sample."""
