"""Every published version of a partition, kept in the lake next to the latest one (issue 19).

Publishers revise figures already published (DOSM revises the latest months with each release). The
``raw/`` partitions hold the current version only; ``history/<dataset>/year=YYYY/month=MM/`` holds
every version the pipeline ever landed, one immutable Parquet object per version, named
``<seen_at>-<sha256[:16]>.parquet``: the partition's rows plus ``version_seen_at`` (UTC, when the
run that landed it saw it) and ``version_source_modified_at`` (the source's Last-Modified, when it
sends one). dbt reads the history as one more source (``dosm.iowrt_history``, ``…iowrt_3d_history``),
so the same models run on DuckDB (a glob over the directory) and Athena (a Glue table over S3).

Why a lake prefix and not dbt snapshots or Iceberg: see docs/revisions.md. In short: it works the
same on a directory and on S3, it records what the *pipeline* saw even when dbt does not run, and it
grows by exactly the partitions that changed (one object per changed partition per release).

Write order for a changed partition: history object (a new key, never overwritten), then the raw
partition, then the manifest (which names the partition's current history key). A run killed in
between leaves a history object the manifest does not name yet; the next landing of the same bytes
finds it by its hash and reuses it instead of writing a second copy.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import pyarrow as pa
import pyarrow.parquet as pq

from tasks.core.lake import Lake
from tasks.insightflow.contracts import Dataset, manifest_key, partition_object_key

SEEN_COLUMN = "version_seen_at"
SOURCE_MODIFIED_COLUMN = "version_source_modified_at"
VERSION_COLUMNS = ((SEEN_COLUMN, "timestamp[ms]"), (SOURCE_MODIFIED_COLUMN, "timestamp[ms]"))
_TIMESTAMP = pa.timestamp("ms")  # naive UTC; Athena (Hive) and DuckDB both read it as timestamp
_NAME = re.compile(r"(\d{8}T\d{6}\d{3}Z)-([0-9a-f]{16})\.parquet")


def history_prefix(dataset: str) -> str:
    """The folder holding every version of a dataset's partitions (a Glue table location in prod)."""
    return f"history/{dataset}/"


def history_table_name(dataset: str) -> str:
    """The Glue table (and dbt source) name of a dataset's history."""
    return f"{dataset}_history"


def version_key(dataset: str, partition: str, seen_at: datetime, sha256: str) -> str:
    """``history/<dataset>/<partition>/<seen_at>-<sha16>.parquet``: sorts by time within a partition."""
    stamp = seen_at.astimezone(UTC).strftime("%Y%m%dT%H%M%S") + f"{seen_at.microsecond // 1000:03d}Z"
    folder = f"{history_prefix(dataset)}{partition}/" if partition else history_prefix(dataset)
    return f"{folder}{stamp}-{sha256[:16]}.parquet"


def source_modified_at(last_modified: str | None) -> datetime | None:
    """The source's ``Last-Modified`` header as an aware UTC datetime; None when absent or unparseable."""
    if not last_modified:
        return None
    try:
        parsed = parsedate_to_datetime(last_modified)
    except (TypeError, ValueError):
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def version_bytes(rows: pa.Table, seen_at: datetime, source_modified: datetime | None) -> bytes:
    """The partition's rows with the two version columns appended, as Parquet."""

    def column(value: datetime | None) -> pa.Array:
        naive = None if value is None else value.astimezone(UTC).replace(tzinfo=None)
        return pa.array([naive] * rows.num_rows, _TIMESTAMP)

    table = rows.append_column(SEEN_COLUMN, column(seen_at)).append_column(
        SOURCE_MODIFIED_COLUMN, column(source_modified)
    )
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="snappy", write_statistics=True)
    return sink.getvalue().to_pybytes()


def _partition_of(dataset: str, key: str) -> str:
    rest = key[len(history_prefix(dataset)) :]
    return rest.rsplit("/", 1)[0] if "/" in rest else ""


def latest_versions(lake: Lake, dataset: str) -> dict[str, str]:
    """Partition -> its newest history key (one listing of the dataset's history)."""
    latest: dict[str, str] = {}
    for key in lake.list(history_prefix(dataset)):
        if _NAME.fullmatch(key.rsplit("/", 1)[-1]):
            partition = _partition_of(dataset, key)
            latest[partition] = max(latest.get(partition, ""), key)
    return latest


def record_version(
    lake: Lake,
    dataset: Dataset,
    partition: str,
    rows: pa.Table,
    sha256: str,
    seen_at: datetime,
    source_modified: datetime | None,
    latest: dict[str, str],
) -> dict[str, str]:
    """Write one version of a partition to the history (unless its newest version has these bytes).

    Returns the manifest's ``version`` entry: the history key and when the version was first seen.
    """
    newest = latest.get(partition)
    if newest and newest.endswith(f"-{sha256[:16]}.parquet"):
        # Written by a run that died before switching the manifest: the same version, seen then.
        stamp = _NAME.fullmatch(newest.rsplit("/", 1)[-1])[1]
        seen = datetime.strptime(stamp[:15], "%Y%m%dT%H%M%S").replace(microsecond=int(stamp[15:18]) * 1000, tzinfo=UTC)
        return {"key": newest, "seen_at": seen.isoformat(timespec="milliseconds")}
    key = version_key(dataset.name, partition, seen_at, sha256)
    lake.write(key, version_bytes(rows, seen_at, source_modified))
    latest[partition] = key
    return {"key": key, "seen_at": seen_at.isoformat(timespec="milliseconds")}


def backfill_history(lake: Lake, dataset: Dataset) -> list[str]:
    """Give every landed partition without a recorded version one, from its current object.

    For lakes landed before history existed: the version is dated by the manifest's ``landed_at``
    (the best the lake knows). Writes the manifest last; returns the partitions backfilled.
    """
    manifest = lake.read_json(manifest_key(dataset.name)) or {}
    parts: dict[str, dict] = manifest.get("partitions") or {}
    missing = sorted(p for p, entry in parts.items() if "version" not in entry)
    if not missing:
        return []
    landed_at = datetime.fromisoformat(manifest.get("landed_at") or datetime.now(UTC).isoformat())
    source_modified = source_modified_at((manifest.get("source") or {}).get("last_modified"))
    latest = latest_versions(lake, dataset.name)
    for partition in missing:
        data = lake.read(parts[partition].get("key") or partition_object_key(dataset.name, partition))
        if data is None:
            raise RuntimeError(
                f"dataset {dataset.name}: partition {partition or '(whole table)'} is in the manifest but not in the lake"
            )
        rows = pq.read_table(pa.BufferReader(data))
        parts[partition]["version"] = record_version(
            lake, dataset, partition, rows, parts[partition]["sha256"], landed_at, source_modified, latest
        )
    lake.write_json(manifest_key(dataset.name), manifest)
    return missing
