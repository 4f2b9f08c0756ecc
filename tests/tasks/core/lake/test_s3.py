"""S3Lake against moto: same behaviour as LocalLake, inside the block's bucket folder."""

from __future__ import annotations

import asyncio

import pytest

from tasks.core.lake import LocalLake, open_lake
from tasks.core.lake.s3 import S3Lake

pytestmark = pytest.mark.aws

IOWRT_JAN = "raw/iowrt/year=2024/month=01/data.parquet"
IOWRT_3D_JAN = "raw/iowrt_3d/year=2024/month=01/data.parquet"


def raw_keys(bucket) -> list[str]:
    client = bucket.credentials.get_client("s3")
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket.bucket_name).get("Contents", []))


def test_s3_lake_round_trips_replaces_and_deletes_inside_the_bucket_folder(make_bucket):
    bucket = make_bucket(folder="lake")
    lake = S3Lake(bucket)

    assert lake.read(IOWRT_JAN) is None
    lake.write(IOWRT_JAN, b"v1")
    lake.write(IOWRT_JAN, b"v2")
    lake.write_json("raw/iowrt/_manifest.json", {"rows": 3})

    assert lake.read(IOWRT_JAN) == b"v2"
    assert lake.read_json("raw/iowrt/_manifest.json") == {"rows": 3}
    # One object per key, under the folder, never doubled ("lake/lake/...").
    assert raw_keys(bucket) == ["lake/raw/iowrt/_manifest.json", f"lake/{IOWRT_JAN}"]
    assert lake.uri(IOWRT_JAN) == f"s3://insightflow-lake/lake/{IOWRT_JAN}"
    assert lake.uri("raw/iowrt/") == "s3://insightflow-lake/lake/raw/iowrt/"
    assert lake.uri() == "s3://insightflow-lake/lake"

    lake.delete(IOWRT_JAN)
    lake.delete(IOWRT_JAN)  # deleting a missing key is a no-op, as locally
    assert lake.read(IOWRT_JAN) is None
    assert raw_keys(bucket) == ["lake/raw/iowrt/_manifest.json"]


def test_s3_lake_keeps_the_raw_prefix_when_the_bucket_folder_is_also_named_raw(make_bucket):
    # Regression guard: S3Bucket.write_path skips bucket_folder when the path already starts with it.
    bucket = make_bucket(folder="raw")
    lake = S3Lake(bucket)
    lake.write(IOWRT_JAN, b"x")
    assert raw_keys(bucket) == [f"raw/{IOWRT_JAN}"]
    assert lake.list("raw/iowrt") == [IOWRT_JAN]
    assert lake.read(IOWRT_JAN) == b"x"


def test_s3_lake_list_does_not_match_sibling_prefixes(make_bucket):
    bucket = make_bucket(folder="lake")
    other = make_bucket(folder="lake2")
    lake = S3Lake(bucket)
    lake.write(IOWRT_JAN, b"a")
    lake.write(IOWRT_3D_JAN, b"b")
    lake.write("raw/iowrt/_manifest.json", b"{}")
    S3Lake(other).write("raw/iowrt/stray.parquet", b"c")

    # "iowrt" must not match "iowrt_3d/", nor "lake" match "lake2/".
    assert lake.list("raw/iowrt") == ["raw/iowrt/_manifest.json", IOWRT_JAN]
    assert lake.list("raw/iowrt/") == ["raw/iowrt/_manifest.json", IOWRT_JAN]
    assert lake.list("raw/iowrt_3d") == [IOWRT_3D_JAN]
    assert lake.list("") == ["raw/iowrt/_manifest.json", IOWRT_JAN, IOWRT_3D_JAN]
    assert lake.list("raw/msic") == []


def test_s3_lake_works_from_async_code(make_bucket):
    # S3Bucket methods return coroutines in an async context unless told _sync=True.
    lake = S3Lake(make_bucket())

    async def use_lake():
        lake.write(IOWRT_JAN, b"async")
        return lake.read(IOWRT_JAN), lake.list("raw")

    assert asyncio.run(use_lake()) == (b"async", [IOWRT_JAN])
    assert lake.uri(IOWRT_JAN) == f"s3://insightflow-lake/{IOWRT_JAN}"


@pytest.mark.parametrize("key", ["", "/raw/x", "raw/../secrets", "raw//x", "./raw/x"])
def test_s3_lake_rejects_keys_that_are_not_relative_paths(make_bucket, key):
    with pytest.raises(ValueError, match="invalid lake key"):
        S3Lake(make_bucket()).write(key, b"x")


def test_open_lake_gives_a_local_lake_for_dev(tmp_path):
    lake = open_lake("dev", home=tmp_path)
    assert isinstance(lake, LocalLake) and lake.root == (tmp_path / "lake").resolve()
    with pytest.raises(ValueError, match="unknown target 'staging'"):
        open_lake("staging")
