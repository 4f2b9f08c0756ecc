"""The offline sample: deterministic data shaped like the published files, served over loopback."""
