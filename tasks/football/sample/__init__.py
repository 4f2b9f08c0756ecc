"""The offline football sample: a deterministic season, served at the API's paths over loopback."""
