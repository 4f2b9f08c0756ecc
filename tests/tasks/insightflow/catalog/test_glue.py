"""Glue catalog against moto: tables and partitions follow what ingest.land wrote; the crawler mode waits well."""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks.core.lake import LocalLake
from tasks.core.lake.s3 import S3Lake
from tasks.insightflow.catalog import crawler
from tasks.insightflow.catalog import glue as catalog
from tasks.insightflow.contracts import FUELPRICE, IOWRT, MSIC
from tasks.insightflow.ingest.fetch import Fetched
from tasks.insightflow.ingest.land import land

pytestmark = pytest.mark.aws

DATABASE = "insightflow_raw"
CRAWLER = "insightflow-raw"


@pytest.fixture
def glue(aws_credentials):
    client = aws_credentials.get_client("glue")
    catalog.ensure_database(client, DATABASE)
    return client


@pytest.fixture
def lake(make_bucket) -> S3Lake:
    return S3Lake(make_bucket(folder="lake"))


def fetched(dataset: str, etag: str = '"v1"') -> Fetched:
    return Fetched(dataset=dataset, url=f"http://fixture/{dataset}.parquet", status="new", content=b"", etag=etag)


def iowrt_rows(months: list[tuple[int, int]], sales: float = 100.0) -> pa.Table:
    dates = [date(y, m, 1) for y, m in months]
    return pa.table(
        {
            "series": pa.array(["abs"] * len(dates)),
            "ymd_date": pa.array(dates, pa.date32()),
            "sales": pa.array([sales + i for i in range(len(dates))], pa.float64()),
            "volume": pa.array([1.0] * len(dates), pa.float64()),
        }
    )


def glue_partitions(glue, table: str) -> dict[tuple[str, ...], dict]:
    pages = glue.get_paginator("get_partitions").paginate(DatabaseName=DATABASE, TableName=table)
    return {tuple(p["Values"]): p for page in pages for p in page["Partitions"]}


def columns_of(glue, table: str) -> list[tuple[str, str]]:
    found = glue.get_table(DatabaseName=DATABASE, Name=table)["Table"]["StorageDescriptor"]["Columns"]
    return [(c["Name"], c["Type"]) for c in found]


def test_catalog_creates_a_parquet_table_and_registers_exactly_the_landed_partitions(glue, lake):
    result = land(lake, IOWRT, iowrt_rows([(2024, 1), (2024, 2)]), fetched("iowrt"))

    outcome = catalog.catalog_landed(glue, DATABASE, lake, result)

    assert (outcome.table_action, outcome.partitions_created) == (
        "created",
        ["year=2024/month=01", "year=2024/month=02"],
    )
    table = glue.get_table(DatabaseName=DATABASE, Name="iowrt")["Table"]
    descriptor = table["StorageDescriptor"]
    assert table["TableType"] == "EXTERNAL_TABLE"
    assert descriptor["Location"] == "s3://insightflow-lake/lake/raw/iowrt/"
    assert (
        descriptor["SerdeInfo"]["SerializationLibrary"] == "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    )
    assert [(k["Name"], k["Type"]) for k in table["PartitionKeys"]] == [("year", "string"), ("month", "string")]
    # The file's columns with Hive types, then the contract's optional volume_sa (absent from this file).
    assert columns_of(glue, "iowrt") == [
        ("series", "string"),
        ("ymd_date", "date"),
        ("sales", "double"),
        ("volume", "double"),
        ("volume_sa", "double"),
    ]
    partitions = glue_partitions(glue, "iowrt")
    assert sorted(partitions) == [("2024", "01"), ("2024", "02")]
    # Each partition points at the folder holding the one object land() wrote.
    for values, partition in partitions.items():
        folder = partition["StorageDescriptor"]["Location"]
        assert folder == f"s3://insightflow-lake/lake/raw/iowrt/year={values[0]}/month={values[1]}/"
        assert lake.list(folder.removeprefix(lake.uri() + "/")) == [
            f"raw/iowrt/year={values[0]}/month={values[1]}/data.parquet"
        ]


def test_a_second_run_with_one_new_month_adds_exactly_one_partition(glue, lake):
    first = land(lake, IOWRT, iowrt_rows([(2024, 1), (2024, 2)]), fetched("iowrt"))
    catalog.catalog_landed(glue, DATABASE, lake, first)
    version = glue.get_table(DatabaseName=DATABASE, Name="iowrt")["Table"]["VersionId"]

    second = land(lake, IOWRT, iowrt_rows([(2024, 1), (2024, 2), (2024, 3)]), fetched("iowrt", '"v2"'))
    outcome = catalog.catalog_landed(glue, DATABASE, lake, second)

    assert second.partitions_written == ["year=2024/month=03"]
    assert (outcome.table_action, outcome.partitions_created, outcome.partitions_updated) == (
        "unchanged",
        ["year=2024/month=03"],
        [],
    )
    assert sorted(glue_partitions(glue, "iowrt")) == [("2024", "01"), ("2024", "02"), ("2024", "03")]
    assert glue.get_table(DatabaseName=DATABASE, Name="iowrt")["Table"]["VersionId"] == version


def test_a_new_source_column_updates_the_table_and_the_rewritten_partitions(glue, lake):
    weeks = [date(2025, 1, 2), date(2025, 1, 9), date(2025, 2, 6)]
    base = {
        "series_type": pa.array(["level"] * 3),
        "ymd_date": pa.array(weeks, pa.date32()),
        **{m: pa.array([2.05, 2.05, 2.05]) for m in ("ron95", "ron97", "diesel", "diesel_eastmsia")},
    }
    catalog.catalog_landed(glue, DATABASE, lake, land(lake, FUELPRICE, pa.table(base), fetched("fuelprice")))
    before = dict(columns_of(glue, "fuelprice"))
    assert "ron92" not in before

    # data.gov.my adds columns from time to time; this one is not in the contract either.
    grown = land(
        lake, FUELPRICE, pa.table({**base, "ron92": pa.array([1.99, 1.99, 1.98])}), fetched("fuelprice", '"v2"')
    )
    outcome = catalog.catalog_landed(glue, DATABASE, lake, grown)

    assert outcome.table_action == "updated"
    assert dict(columns_of(glue, "fuelprice")) == {**before, "ron92": "double"}
    assert outcome.partitions_updated == ["year=2025/month=01", "year=2025/month=02"] == grown.partitions_written
    assert outcome.partitions_created == []
    for partition in glue_partitions(glue, "fuelprice").values():
        assert ("ron92", "double") in [(c["Name"], c["Type"]) for c in partition["StorageDescriptor"]["Columns"]]


def test_partitions_the_source_dropped_are_removed_from_the_catalog(glue, lake):
    catalog.catalog_landed(
        glue, DATABASE, lake, land(lake, IOWRT, iowrt_rows([(2024, 1), (2024, 2)]), fetched("iowrt"))
    )

    shrunk = land(lake, IOWRT, iowrt_rows([(2024, 2)], sales=101.0), fetched("iowrt", '"v2"'))
    outcome = catalog.catalog_landed(glue, DATABASE, lake, shrunk)

    assert outcome.partitions_deleted == ["year=2024/month=01"]
    assert sorted(glue_partitions(glue, "iowrt")) == [("2024", "02")]


def test_partitions_landed_by_a_run_that_died_before_cataloguing_are_registered_next_time(glue, lake):
    land(lake, IOWRT, iowrt_rows([(2024, 1)]), fetched("iowrt"))  # then the run died: no catalog step
    rerun = land(lake, IOWRT, iowrt_rows([(2024, 1), (2024, 2)]), fetched("iowrt", '"v2"'))
    assert rerun.partitions_unchanged == ["year=2024/month=01"]

    outcome = catalog.catalog_landed(glue, DATABASE, lake, rerun)

    assert outcome.partitions_created == ["year=2024/month=01", "year=2024/month=02"]


def test_an_unpartitioned_dataset_gets_a_table_over_its_folder_without_partition_keys(glue, lake):
    rows = pa.table({"digits": pa.array([2, 3], pa.int64()), "desc_en": pa.array(["Agriculture", "Crop"])})
    outcome = catalog.catalog_landed(glue, DATABASE, lake, land(lake, MSIC, rows, fetched("msic")))

    table = glue.get_table(DatabaseName=DATABASE, Name="msic")["Table"]
    assert (outcome.table_action, outcome.partitions_created) == ("created", [])
    assert table.get("PartitionKeys", []) == []
    assert table["StorageDescriptor"]["Location"] == "s3://insightflow-lake/lake/raw/msic/"
    assert columns_of(glue, "msic")[:2] == [("digits", "bigint"), ("desc_en", "string")]


def test_catalog_refuses_a_local_lake(glue, tmp_path):
    lake = LocalLake(tmp_path)
    with pytest.raises(ValueError, match="need an S3 lake"):
        catalog.catalog_landed(glue, DATABASE, lake, land(lake, IOWRT, iowrt_rows([(2024, 1)]), fetched("iowrt")))


@pytest.mark.parametrize(
    ("arrow_type", "hive"),
    [
        ("string", "string"),
        ("large_string", "string"),
        ("double", "double"),
        ("int64", "bigint"),
        ("date32[day]", "date"),
        ("timestamp[us, tz=UTC]", "timestamp"),
        ("decimal128(10, 2)", "decimal(10,2)"),
        ("bool", "boolean"),
    ],
)
def test_hive_type_maps_arrow_types(arrow_type, hive):
    assert catalog.hive_type(arrow_type) == hive


def test_hive_type_names_an_unknown_arrow_type():
    with pytest.raises(ValueError, match="list<item: string>"):
        catalog.hive_type("list<item: string>")


@pytest.mark.parametrize("partition", ["month=01/year=2024", "year=2024", "year=/month=01", ""])
def test_partition_values_rejects_anything_but_year_then_month(partition):
    with pytest.raises(ValueError):
        catalog.partition_values(partition)


# ------------------------------------------------------------------------------------------ crawler


def make_crawler(glue, name: str = CRAWLER) -> None:
    glue.create_crawler(
        Name=name,
        Role="arn:aws:iam::123456789012:role/insightflow-crawler",
        DatabaseName=DATABASE,
        Targets={"S3Targets": [{"Path": "s3://insightflow-lake/lake/raw/"}]},
    )


def moto_crawler(name: str = CRAWLER):
    # ThreadedMotoServer runs in this process, so its backend is the one serving the HTTP calls.
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.glue.models import glue_backends

    return glue_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].crawlers[name]


class FakeTime:
    """A clock and sleep for the poll loop; ``on_sleep`` steers moto's crawler as AWS would over time."""

    def __init__(self, on_sleep=None):
        self.now, self.sleeps, self.on_sleep = 0.0, [], on_sleep

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep:
            self.on_sleep(len(self.sleeps))


def finish_crawl_after(polls: int, status: str):
    def on_sleep(count: int) -> None:
        if count == polls:
            moto_crawler().crawls[-1].status = status

    return on_sleep


def test_crawler_mode_starts_the_crawler_and_waits_with_backoff_until_ready(glue):
    make_crawler(glue)
    time = FakeTime(finish_crawl_after(3, "COMPLETED"))

    outcome = crawler.run_crawler(glue, CRAWLER, poll_first_s=5, poll_max_s=30, sleep=time.sleep, clock=time.clock)

    assert (outcome.status, outcome.joined_running_crawl) == ("COMPLETED", False)
    assert time.sleeps == [5, 10, 20]
    assert outcome.waited_s == 35
    assert glue.get_crawler(Name=CRAWLER)["Crawler"]["State"] == "READY"


def test_crawler_mode_joins_a_crawl_that_is_already_running(glue):
    make_crawler(glue)
    glue.start_crawler(Name=CRAWLER)  # a schedule or a colleague started it
    time = FakeTime(finish_crawl_after(1, "COMPLETED"))

    outcome = crawler.run_crawler(glue, CRAWLER, sleep=time.sleep, clock=time.clock)

    assert outcome.joined_running_crawl is True
    assert len(moto_crawler().crawls) == 1


def test_crawler_mode_fails_with_the_crawlers_own_error(glue, monkeypatch):
    from moto.glue.models import FakeCrawler

    # AWS puts the reason in LastCrawl.ErrorMessage; moto leaves it out, so add it as AWS would.
    original = FakeCrawler.as_dict

    def as_dict_with_error(self):
        data = original(self)
        if data.get("LastCrawl", {}).get("Status") == "FAILED":
            data["LastCrawl"]["ErrorMessage"] = (
                "Service Principal: glue.amazonaws.com is not authorized to perform: s3:GetObject"
            )
        return data

    monkeypatch.setattr(FakeCrawler, "as_dict", as_dict_with_error)
    make_crawler(glue)
    time = FakeTime(finish_crawl_after(1, "FAILED"))

    with pytest.raises(
        crawler.CrawlerFailed,
        match=r"last crawl FAILED: Service Principal.*s3:GetObject.*logs: /aws-glue/crawlers/insightflow-raw",
    ):
        crawler.run_crawler(glue, CRAWLER, sleep=time.sleep, clock=time.clock)


def test_crawler_mode_times_out_naming_the_crawler_and_its_state(glue):
    make_crawler(glue)  # moto's crawl stays RUNNING until told otherwise
    time = FakeTime()

    with pytest.raises(TimeoutError, match=r"'insightflow-raw' still RUNNING after 100 s \(timeout 100 s\)"):
        crawler.run_crawler(
            glue, CRAWLER, timeout_s=100, poll_first_s=5, poll_max_s=30, sleep=time.sleep, clock=time.clock
        )
    assert time.sleeps == [5, 10, 20, 30, 30, 5]  # the last poll lands on the deadline


def test_crawler_mode_explains_a_missing_crawler(glue):
    with pytest.raises(ValueError, match="Glue crawler 'nope' does not exist"):
        crawler.run_crawler(glue, "nope", sleep=lambda s: None)


def test_history_table_keeps_every_version_of_a_revised_partition_on_s3(glue, lake):
    first = land(lake, IOWRT, iowrt_rows([(2024, 1), (2024, 2)]), fetched("iowrt"))
    catalog.catalog_landed(glue, DATABASE, lake, first)
    # The publisher revises February (sales + 0.5) and adds March.
    revised = iowrt_rows([(2024, 1), (2024, 2), (2024, 3)])
    revised = revised.set_column(2, "sales", pa.array([100.0, 101.5, 102.0], pa.float64()))
    second = land(lake, IOWRT, revised, fetched("iowrt", '"v2"'))

    outcome = catalog.catalog_landed(glue, DATABASE, lake, second)

    assert second.versions_recorded == ["year=2024/month=02", "year=2024/month=03"]
    assert outcome.history_partitions_created == ["year=2024/month=03"]
    history = glue.get_table(DatabaseName=DATABASE, Name="iowrt_history")["Table"]
    assert history["StorageDescriptor"]["Location"] == "s3://insightflow-lake/lake/history/iowrt/"
    assert columns_of(glue, "iowrt_history")[-3:] == [
        ("version_seen_at", "timestamp"),
        ("version_source_modified_at", "timestamp"),
        ("volume_sa", "double"),
    ]
    assert sorted(glue_partitions(glue, "iowrt_history")) == [("2024", "01"), ("2024", "02"), ("2024", "03")]
    february = lake.list("history/iowrt/year=2024/month=02/")
    assert len(february) == 2 and len(lake.list("history/iowrt/year=2024/month=01/")) == 1
    sales = [pq.read_table(pa.BufferReader(lake.read(key)))["sales"].to_pylist() for key in february]
    assert sales == [[101.0], [101.5]]  # keys sort by the time each version was seen
