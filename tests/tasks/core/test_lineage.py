"""Asset keys from URLs and lake locations, and the lineage diagram's statuses across runs (pure functions)."""

from __future__ import annotations

import pytest
from prefect.assets import Asset

from tasks.core.assets import Note, location_key, url_key
from tasks.core.lineage import merge, mermaid

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("https://storage.dosm.gov.my/iowrt/iowrt.parquet", "https://storage.dosm.gov.my/iowrt/iowrt.parquet"),
        (
            "https://api.football-data.org/v4/competitions/PL/scorers?season=2024&limit=100",
            "https://api.football-data.org/v4/competitions/PL/scorers",
        ),
        ("http://127.0.0.1:41787/commodities/fuelprice.parquet", "http://127.0.0.1/commodities/fuelprice.parquet"),
        ("https://user:pw@mirror.example:8443/a b/{x}.parquet#frag", "https://mirror.example:8443/ab/x.parquet"),
        ("HTTPS://Storage.DOSM.gov.my/iowrt/", "https://storage.dosm.gov.my/iowrt"),
    ],
)
def test_url_key_drops_query_credentials_loopback_port_and_forbidden_characters(url, key):
    assert url_key(url) == key
    assert Asset(key=key).key == key  # Prefect accepts it


def test_location_key_is_file_uri_locally_and_the_s3_uri_in_prod():
    assert location_key("/home/me/.insightflow/lake/raw/iowrt") == "file:///home/me/.insightflow/lake/raw/iowrt"
    assert location_key("s3://insightflow-lake/raw/iowrt/") == "s3://insightflow-lake/raw/iowrt"


def _note(key: str, status: str, at: str, upstream: list[str], layer: str = "lake") -> Note:
    return Note(key=key, name=key.rsplit("/", 1)[-1], layer=layer, status=status, at=at, upstream=upstream)


def test_a_later_run_shows_unchanged_assets_with_their_last_time_and_a_failure_keeps_the_last_good_time():
    src, raw, stg = "https://h/x.parquet", "file:///l/raw/x", "duckdb://warehouse/main/stg_x"
    first = [
        _note(raw, "materialized", "2026-12-01T05:00:00+00:00", [src]),
        _note(stg, "materialized", "2026-12-01T05:01:00+00:00", [raw], "staging"),
    ]
    lineage, state = merge({}, first, {src: "new content"})
    assert {k: n["run_status"] for k, n in lineage.nodes.items()} == {
        src: "source",
        raw: "materialized",
        stg: "materialized",
    }
    assert sorted(lineage.edges()) == sorted([(src, raw), (raw, stg)])

    second = [_note(raw, "failed", "2026-12-02T05:00:00+00:00", [src])]
    lineage, _ = merge(state, second, {src: "failed this run"})
    assert lineage.nodes[raw]["run_status"] == "failed" and lineage.nodes[raw]["at"] == "2026-12-01T05:00:00+00:00"
    assert lineage.nodes[stg]["run_status"] == "unchanged" and lineage.nodes[stg]["at"] == "2026-12-01T05:01:00+00:00"

    diagram = mermaid(lineage)
    assert "✘ failed this run<br/>last materialized 2026-12-01 05:00:00 UTC" in diagram
    assert "unchanged this run<br/>last materialized 2026-12-01 05:01:00 UTC" in diagram
    assert diagram.count("-->") == 2 and 'subgraph layer_staging["dbt staging"]' in diagram
