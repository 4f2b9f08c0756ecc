"""Land a validated dataset in the lake as Hive-partitioned Parquet, atomically per partition.

The lake keeps, per dataset, one Parquet object per ``year=YYYY/month=MM`` partition and a
``_manifest.json`` written last: the source's ETag/Last-Modified/sha256 for conditional requests,
and each partition's sha256 so an unchanged partition is never rewritten.
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

from tasks.core.lake import Lake
from tasks.insightflow.contracts import Dataset, get_dataset, manifest_key, partition_object_key
from tasks.insightflow.fetch import Fetched
from tasks.insightflow.validate import Validated

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
        if old_parts.get(partition, {}).get("sha256") == digest:
            result.partitions_unchanged.append(partition)
            continue
        lake.write(key, data)
        result.partitions_written.append(partition)
    manifest = {
        "dataset": dataset.name,
        "landed_at": datetime.now(UTC).isoformat(timespec="seconds"),
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
    """Write the dataset's changed partitions to the lake, then its manifest."""
    fetched = validated.fetched
    if validated.table is None:
        if fetched.status == "same_content":
            remember_source(lake, fetched)
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
            newest_date=previous.get("newest_date"),
            note="HTTP 304 Not Modified" if fetched.status == "not_modified" else "same content hash",
        )
    result = land(lake, get_dataset(fetched.dataset), validated.table, fetched)
    get_run_logger().info(
        "%s: %d rows; %d partition(s) written, %d unchanged, %d deleted",
        result.dataset,
        result.rows,
        len(result.partitions_written),
        len(result.partitions_unchanged),
        len(result.partitions_deleted),
    )
    return result
