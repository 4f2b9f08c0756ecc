"""Ingest: fetch each dataset over HTTP, validate it against its contract, land it in the lake with its history."""
