"""Land a validated dataset in the lake as Hive-partitioned Parquet, atomically per partition.

The lake keeps, per dataset, one Parquet object per ``year=YYYY/month=MM`` partition and a
``_manifest.json`` written last: the source's ETag/Last-Modified/sha256 for conditional requests,
and each partition's sha256 so an unchanged partition is never rewritten. Every version a partition
ever had is also kept under ``history/`` (tasks/insightflow/ingest/history.py), written before the partition.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.core.assets import location_key, materialized, url_key
from tasks.core.lake import Lake
from tasks.insightflow.contracts import Dataset, get_dataset, manifest_key, partition_object_key
from tasks.insightflow.ingest.fetch import Fetched
from tasks.insightflow.ingest.history import backfill_history, latest_versions, record_version, source_modified_at
from tasks.insightflow.ingest.validate import Validated

PARQUET_COMPRESSION = "snappy"  # read by Athena, DuckDB and Spark alike


@dataclass
class LandResult:
    """What landing one dataset did; small, JSON-friendly, shown in the run's artifacts."""

    dataset: str
    status: Literal["landed", "unchanged", "failed"]
    rows: int = 0
    bytes: int = 0
    partitions_written: list[str] = field(default_factory=list)
    partitions_unchanged: list[str] = field(default_factory=list)
    partitions_deleted: list[str] = field(default_factory=list)
    # partitions that gained a version under history/ (written ones, and backfilled ones of older lakes)
    versions_recorded: list[str] = field(default_factory=list)
    columns: list[tuple[str, str]] = field(default_factory=list)
    source_etag: str | None = None
    note: str = ""
    newest_date: str | None = None  # ISO date of the newest row (freshness.py judges it)

    @property
    def changed(self) -> bool:
        return bool(self.partitions_written or self.partitions_deleted)


def _newest_date(dataset: Dataset, table: pa.Table) -> str | None:
    if dataset.date_field is None or table.num_rows == 0:
        return None
    newest = pc.max(table.column(dataset.date_field.name)).as_py()
    return newest.isoformat() if newest is not None else None


def partition_slices(dataset: Dataset, table: pa.Table) -> list[tuple[str, pa.Table]]:
    """Split ``table`` into (``year=YYYY/month=MM``, rows) pairs, rows sorted by date within each."""
    date_field = dataset.date_field
    if date_field is None:
        return [("", table)]
    # One stable sort by date, then runs of equal year*100+month, all in Arrow (no Python loop over rows).
    ordered = table.take(pc.sort_indices(table.column(date_field.name)))
    dates = ordered.column(date_field.name).combine_chunks()
    runs = pc.run_end_encode(pc.add(pc.multiply(pc.year(dates), 100), pc.month(dates)))
    out, start = [], 0
    for end, year_month in zip(runs.run_ends.to_pylist(), runs.values.to_pylist(), strict=True):
        out.append((f"year={year_month // 100:04d}/month={year_month % 100:02d}", ordered.slice(start, end - start)))
        start = end
    return out


def encode_parquet(table: pa.Table) -> bytes:
    """Deterministic Parquet bytes: identical rows always give identical bytes (and hash)."""
    sink = io.BytesIO()
    pq.write_table(table, sink, compression=PARQUET_COMPRESSION, write_statistics=True)
    return sink.getvalue()


def land(lake: Lake, dataset: Dataset, table: pa.Table, fetched: Fetched) -> LandResult:
    """Write changed partitions, then switch the manifest, then delete partitions the source dropped.

    Each partition object is replaced atomically, so a crash at any point leaves every partition at
    its old or new version; the manifest (written last) only ever describes complete data.
    """
    previous = lake.read_json(manifest_key(dataset.name)) or {}
    old_parts: dict[str, dict] = previous.get("partitions") or {}
    seen_at = datetime.now(UTC)
    modified = source_modified_at(fetched.last_modified)
    previous_landed = datetime.fromisoformat(previous["landed_at"]) if previous.get("landed_at") else seen_at
    latest: dict[str, str] | None = None  # history listed once, only if some partition needs a version
    result = LandResult(
        dataset=dataset.name,
        status="landed",
        rows=table.num_rows,
        source_etag=fetched.etag,
        columns=[(f.name, str(f.type)) for f in table.schema],
        newest_date=_newest_date(dataset, table),
    )
    parts: dict[str, dict] = {}
    for partition, rows in partition_slices(dataset, table):
        data = encode_parquet(rows)
        digest = hashlib.sha256(data).hexdigest()
        key = partition_object_key(dataset.name, partition)
        parts[partition] = {"key": key, "rows": rows.num_rows, "bytes": len(data), "sha256": digest}
        result.bytes += len(data)
        old = old_parts.get(partition, {})
        unchanged = old.get("sha256") == digest
        if unchanged and "version" in old:
            parts[partition]["version"] = old["version"]
            result.partitions_unchanged.append(partition)
            continue
        if latest is None:
            latest = latest_versions(lake, dataset.name)
        # The version goes to history/ before the partition is replaced: nothing landed is ever lost.
        when = previous_landed if unchanged else seen_at  # unchanged without a version: an older lake
        parts[partition]["version"] = record_version(lake, dataset, partition, rows, digest, when, modified, latest)
        result.versions_recorded.append(partition)
        if unchanged:
            result.partitions_unchanged.append(partition)
            continue
        lake.write(key, data)
        result.partitions_written.append(partition)
    manifest = {
        "dataset": dataset.name,
        "landed_at": seen_at.isoformat(timespec="seconds"),
        "newest_date": result.newest_date,
        "rows": table.num_rows,
        "columns": result.columns,
        "source": {
            "url": fetched.url,
            "etag": fetched.etag,
            "last_modified": fetched.last_modified,
            "sha256": fetched.sha256,
            "bytes": len(fetched.content or b""),
        },
        "partitions": parts,
    }
    lake.write_json(manifest_key(dataset.name), manifest)
    live = {p["key"] for p in parts.values()}
    for key in lake.list(f"raw/{dataset.name}/"):
        if key.endswith(".parquet") and key not in live:
            lake.delete(key)
            partition = (
                key[len(f"raw/{dataset.name}/") :].rsplit("/", 1)[0]
                if "/" in key[len(f"raw/{dataset.name}/") :]
                else ""
            )
            result.partitions_deleted.append(partition)
    if not result.changed:
        result.status = "unchanged"
        result.note = "content identical to what is landed"
    return result


def lake_asset_key(lake: Lake, dataset: str) -> str:
    """The asset key of a dataset in the lake: ``s3://<bucket>/raw/<dataset>`` or ``file://<lake>/raw/<dataset>``."""
    return location_key(lake.uri(f"raw/{dataset}"))


def asset_metadata(result: LandResult, fetched: Fetched) -> dict:
    return {
        "rows": result.rows,
        "partitions_written": len(result.partitions_written),
        "partitions_unchanged": len(result.partitions_unchanged),
        "partitions_deleted": len(result.partitions_deleted),
        "bytes": result.bytes,
        "source_etag": result.source_etag,
        "source_url": url_key(fetched.url),
    }


def remember_source(lake: Lake, fetched: Fetched) -> None:
    """Record a new ETag for a source whose bytes turned out identical, so the next run can get a 304."""
    key = manifest_key(fetched.dataset)
    manifest = lake.read_json(key)
    if not manifest:
        return
    source = manifest.setdefault("source", {})
    if source.get("etag") == fetched.etag and source.get("last_modified") == fetched.last_modified:
        return
    source.update({"etag": fetched.etag, "last_modified": fetched.last_modified})
    lake.write_json(key, manifest)


@task(name="land-dataset", task_run_name="land-{validated.fetched.dataset}", cache_policy=NO_CACHE)
def land_dataset(validated: Validated, lake: Lake) -> LandResult:
    """Write the dataset's changed partitions to the lake, then its manifest; materialize its lake asset.

    The lake asset (upstream: the source URL) is materialized only when partitions were written or
    deleted; a failure to land emits its ``materialization.failed`` with the cause.
    """
    fetched = validated.fetched
    with materialized(
        lake_asset_key(lake, fetched.dataset),
        [url_key(fetched.url)],
        name=f"raw/{fetched.dataset}",
        layer="lake",
        by="insightflow",
        description=f"Dataset {fetched.dataset} as landed from {url_key(fetched.url)}",
    ) as asset:
        if validated.table is None:
            asset.skip()
            return _unchanged(lake, fetched)
        result = land(lake, get_dataset(fetched.dataset), validated.table, fetched)
        asset.add(asset_metadata(result, fetched))
        if not result.changed:
            asset.skip()
    get_run_logger().info(
        "%s: %d rows; %d partition(s) written, %d unchanged, %d deleted; %d version(s) kept in history",
        result.dataset,
        result.rows,
        len(result.partitions_written),
        len(result.partitions_unchanged),
        len(result.partitions_deleted),
        len(result.versions_recorded),
    )
    return result


def _unchanged(lake: Lake, fetched: Fetched) -> LandResult:
    if fetched.status == "same_content":
        remember_source(lake, fetched)
    backfilled = backfill_history(lake, get_dataset(fetched.dataset))
    if backfilled:
        get_run_logger().info("%s: history backfilled for %d landed partition(s)", fetched.dataset, len(backfilled))
    previous = lake.read_json(manifest_key(fetched.dataset)) or {}
    parts = sorted(previous.get("partitions") or {})
    return LandResult(
        dataset=fetched.dataset,
        status="unchanged",
        rows=previous.get("rows", 0),
        bytes=sum(p.get("bytes", 0) for p in (previous.get("partitions") or {}).values()),
        partitions_unchanged=parts,
        columns=[tuple(c) for c in previous.get("columns", [])],
        source_etag=fetched.etag,
        versions_recorded=backfilled,
        newest_date=previous.get("newest_date"),
        note="HTTP 304 Not Modified" if fetched.status == "not_modified" else "same content hash",
    )
