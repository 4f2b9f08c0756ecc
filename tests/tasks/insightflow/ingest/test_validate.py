"""Contract validation, coercion and partitioning: the plain functions behind the ingest tasks."""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from tasks.core.lake import LocalLake
from tasks.insightflow.contracts import DATASETS, FUELPRICE, IOWRT_3D, MSIC
from tasks.insightflow.ingest.fetch import Fetched
from tasks.insightflow.ingest.land import encode_parquet, land, partition_slices
from tasks.insightflow.ingest.validate import ContractError, conform, lake_column_name, read_parquet_bytes
from tasks.insightflow.sample.data import SAMPLE_TABLES, parquet_bytes

pytestmark = pytest.mark.unit

URL = "http://mirror.test/iowrt/iowrt_3d.parquet"


def small_iowrt_3d(dates, **overrides) -> pa.Table:
    n = len(dates)
    columns = {
        "series": ["abs"] * n,
        "date": dates,
        "group": ["471"] * n,
        "sales": [float(i + 1) for i in range(n)],
        "volume": [100.0 + i for i in range(n)],
    }
    columns.update(overrides)
    return pa.table(columns)


@pytest.mark.parametrize(
    "dates",
    [
        pa.array([date(2024, 1, 1), date(2024, 2, 1)], pa.date32()),
        pa.array([date(2024, 1, 1), date(2024, 2, 1)], pa.date32()).cast(pa.timestamp("ns")),
        pa.array([date(2024, 1, 1), date(2024, 2, 1)], pa.date32()).cast(pa.timestamp("us", tz="UTC")),
        pa.array(["2024-01-01", "2024-02-01"]),
        pa.array(["2024-01-01T00:00:00", "2024-02-01 00:00:00"]),
        pa.array(["2024-01-01", "2024-02-01"]).dictionary_encode(),
    ],
    ids=["date32", "timestamp-ns", "timestamp-tz", "iso-string", "iso-datetime-string", "dictionary"],
)
def test_dates_in_every_published_encoding_become_date32(dates):
    table = conform(IOWRT_3D, URL, small_iowrt_3d(dates))
    assert table.schema.field("ymd_date").type == pa.date32()
    assert table["ymd_date"].to_pylist() == [date(2024, 1, 1), date(2024, 2, 1)]


def test_numbers_published_as_strings_are_coerced_and_blank_is_null():
    table = conform(
        IOWRT_3D,
        URL,
        small_iowrt_3d(
            pa.array(["2024-01-01", "2024-02-01"]), sales=pa.array(["1.5", " "]), volume=pa.array([" 7", "8.25"])
        ),
    )
    assert table["sales"].to_pylist() == [1.5, None]
    assert table["volume"].to_pylist() == [7.0, 8.25]


def test_lake_names_are_athena_safe():
    table = conform(IOWRT_3D, URL, small_iowrt_3d(pa.array(["2024-01-01"])))
    assert table.column_names == ["series", "ymd_date", "group_code", "sales", "volume"]
    assert lake_column_name("Group") == "group_code"
    assert lake_column_name("RON 95 (BUDI)") == "ron_95_budi"
    assert lake_column_name("2024x") == "c_2024x"


def test_new_publisher_columns_are_carried_not_rejected():
    published = SAMPLE_TABLES["fuelprice"]().append_column("diesel_skds", pa.array([None] * 897, pa.float64()))
    published = published.append_column("Brand New", pa.array(["x"] * 897))
    table = conform(FUELPRICE, URL, published)
    assert {"ron95_budi95", "diesel_skds", "brand_new"} <= set(table.column_names)
    assert table["brand_new"].to_pylist()[:1] == ["x"]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda t: t.drop_columns(["sales"]), "missing required column(s) sales"),
        (
            lambda t: t.rename_columns(["series", "period", "group", "sales", "volume"]),
            "missing required column(s) date",
        ),
        (lambda t: t.slice(0, 0), "empty table (0 rows)"),
        (
            lambda t: t.set_column(3, "sales", pa.array(["1", "n/a"])),
            "column 'sales': 1 value(s) are not numbers, e.g. 'n/a'",
        ),
        (
            lambda t: t.set_column(1, "date", pa.array(["2024-01-01", "01/02/2024"])),
            "column 'date': 1 value(s) are not dates",
        ),
        (lambda t: t.set_column(0, "series", pa.array(["abs", None])), "column 'series': 1 null value(s)"),
    ],
    ids=["missing", "renamed", "empty", "bad-number", "bad-date", "null-key"],
)
def test_contract_violations_name_dataset_url_and_cause(mutate, message):
    table = mutate(small_iowrt_3d(pa.array(["2024-01-01", "2024-02-01"])))
    with pytest.raises(ContractError) as err:
        conform(IOWRT_3D, URL, table)
    assert str(err.value).startswith(f"dataset iowrt_3d: {URL}: ")
    assert message in str(err.value)


@pytest.mark.parametrize(
    "body, message",
    [
        (b"", "empty body"),
        (b"<!DOCTYPE html><html><body>Service temporarily unavailable</body></html>", "HTML"),
        (b'{"error": "not found"}', "JSON, not Parquet"),
        (b"hello world", "not a Parquet file"),
    ],
)
def test_non_parquet_bodies_are_rejected_with_a_reason(body, message):
    with pytest.raises(ContractError, match=message):
        read_parquet_bytes("msic", URL, body, "text/html")


def test_truncated_and_corrupt_parquet_are_rejected():
    good = parquet_bytes(SAMPLE_TABLES["msic"]())
    with pytest.raises(ContractError, match="truncated Parquet"):
        read_parquet_bytes("msic", URL, good[: len(good) // 2])
    with pytest.raises(ContractError, match="corrupt Parquet"):
        read_parquet_bytes("msic", URL, good[:4] + bytes(len(good) - 8) + good[-4:])


def test_partition_slices_cover_every_row_once_in_month_order():
    published = SAMPLE_TABLES["fuelprice"]()
    table = conform(FUELPRICE, URL, published)
    slices = partition_slices(FUELPRICE, table)
    assert sum(s.num_rows for _, s in slices) == table.num_rows
    keys = [k for k, _ in slices]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    for key, rows in slices:
        months = {(d.year, d.month) for d in rows["ymd_date"].to_pylist()}
        year, month = (int(part.split("=")[1]) for part in key.split("/"))
        assert months == {(year, month)}
    expected_months = {(d.year, d.month) for d in table["ymd_date"].to_pylist()}
    assert len(slices) == len(expected_months)


def test_unpartitioned_dataset_lands_as_one_object(tmp_path):
    table = conform(MSIC, URL, SAMPLE_TABLES["msic"]())
    assert partition_slices(MSIC, table) == [("", table)]


def test_encoding_is_deterministic():
    table = conform(IOWRT_3D, URL, SAMPLE_TABLES["iowrt_3d"]())
    assert encode_parquet(table) == encode_parquet(table)


def _fetched(name: str) -> Fetched:
    return Fetched(dataset=name, url=URL, status="new", content=b"x", sha256="s", etag='"e"')


def test_land_writes_changed_partitions_only_and_replaces_never_duplicates(tmp_path):
    lake = LocalLake(tmp_path)
    table = conform(IOWRT_3D, URL, SAMPLE_TABLES["iowrt_3d"]())
    first = land(lake, IOWRT_3D, table, _fetched("iowrt_3d"))
    assert first.status == "landed" and len(first.partitions_written) == 128 and not first.partitions_unchanged
    files = lake.list("raw/iowrt_3d/")
    assert len([f for f in files if f.endswith(".parquet")]) == 128

    # One month's sales revised: exactly that partition is rewritten.
    revised = table.set_column(
        3,
        "sales",
        pc.if_else(
            pc.equal(table["ymd_date"], pa.scalar(date(2020, 5, 1))), pc.multiply(table["sales"], 1.01), table["sales"]
        ),
    )
    second = land(lake, IOWRT_3D, revised, _fetched("iowrt_3d"))
    assert second.partitions_written == ["year=2020/month=05"]
    assert len(second.partitions_unchanged) == 127

    # The source drops its first year: those partitions disappear after the manifest switch.
    trimmed = revised.filter(pc.greater_equal(revised["ymd_date"], pa.scalar(date(2016, 1, 1))))
    third = land(lake, IOWRT_3D, trimmed, _fetched("iowrt_3d"))
    assert sorted(third.partitions_deleted) == [f"year=2015/month={m:02d}" for m in range(1, 13)]
    rows = pq.read_table(str(tmp_path / "raw/iowrt_3d"), partitioning="hive").num_rows
    assert rows == trimmed.num_rows
    manifest = lake.read_json("raw/iowrt_3d/_manifest.json")
    assert len(manifest["partitions"]) == 116 and manifest["rows"] == trimmed.num_rows


def test_every_contract_has_a_date_or_is_unpartitioned():
    for dataset in DATASETS.values():
        assert (dataset.date_field is not None) == dataset.partition_by_date


def test_land_keeps_each_partition_version_in_history_with_when_it_was_seen(tmp_path):
    lake = LocalLake(tmp_path)
    table = conform(IOWRT_3D, URL, small_iowrt_3d(pa.array([date(2024, 1, 1), date(2024, 2, 1)], pa.date32())))
    fetched = Fetched(
        dataset="iowrt_3d", url=URL, status="new", content=b"x", last_modified="Wed, 05 Mar 2025 10:00:00 GMT"
    )
    land(lake, IOWRT_3D, table, fetched)
    revised = table.set_column(3, "sales", pa.array([1.0, 2.5]))  # February revised
    second = land(lake, IOWRT_3D, revised, fetched)

    assert second.versions_recorded == second.partitions_written == ["year=2024/month=02"]
    (january,) = lake.list("history/iowrt_3d/year=2024/month=01/")
    february = lake.list("history/iowrt_3d/year=2024/month=02/")
    assert len(february) == 2
    kept = [pq.read_table(tmp_path / key) for key in february]
    assert [t["sales"].to_pylist() for t in kept] == [[2.0], [2.5]]
    seen = [t["version_seen_at"][0].as_py() for t in kept]
    assert seen[0] < seen[1]
    assert kept[1]["version_source_modified_at"][0].as_py().isoformat() == "2025-03-05T10:00:00"
    manifest = lake.read_json("raw/iowrt_3d/_manifest.json")
    assert manifest["partitions"]["year=2024/month=02"]["version"]["key"] == february[1]
    assert manifest["partitions"]["year=2024/month=01"]["version"]["key"] == january


def test_a_lake_landed_before_history_is_backfilled_once_dated_by_its_manifest(tmp_path):
    from tasks.insightflow.ingest.history import backfill_history

    lake = LocalLake(tmp_path)
    table = conform(IOWRT_3D, URL, small_iowrt_3d(pa.array([date(2024, 1, 1), date(2024, 2, 1)], pa.date32())))
    land(lake, IOWRT_3D, table, _fetched("iowrt_3d"))
    # what an older release of the flow left: no history/, no version entries in the manifest
    for key in lake.list("history/"):
        lake.delete(key)
    manifest = lake.read_json("raw/iowrt_3d/_manifest.json")
    for entry in manifest["partitions"].values():
        del entry["version"]
    manifest["landed_at"] = "2024-03-01T05:00:00+00:00"
    lake.write_json("raw/iowrt_3d/_manifest.json", manifest)

    assert backfill_history(lake, IOWRT_3D) == ["year=2024/month=01", "year=2024/month=02"]
    assert backfill_history(lake, IOWRT_3D) == []  # once
    keys = lake.list("history/iowrt_3d/")
    assert [k.rsplit("/", 1)[1][:15] for k in keys] == ["20240301T050000"] * 2
    restored = pq.read_table(tmp_path / keys[1]).drop_columns(["version_seen_at", "version_source_modified_at"])
    assert restored.equals(pq.read_table(tmp_path / "raw/iowrt_3d/year=2024/month=02/data.parquet"))
    # and an unchanged landing afterwards writes nothing
    again = land(lake, IOWRT_3D, table, _fetched("iowrt_3d"))
    assert again.status == "unchanged" and not again.versions_recorded and lake.list("history/iowrt_3d/") == keys
