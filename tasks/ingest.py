"""Fetch, validate and land the DOSM / data.gov.my datasets.

Plain functions (tested directly and timed by ``bench/``) with thin Prefect tasks at the bottom.
The lake keeps, per dataset, one Parquet object per ``year=YYYY/month=MM`` partition and a
``_manifest.json`` written last: the source's ETag/Last-Modified/sha256 for conditional requests,
and each partition's sha256 so an unchanged partition is never rewritten.
"""

from __future__ import annotations

import hashlib
import io
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Literal

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tasks import http
from tasks.config import datagovmy_base_url, dosm_base_url
from tasks.datasets import RESERVED_RENAMES, Dataset, Field
from tasks.lake import Lake

PARQUET_MAGIC = b"PAR1"
PARQUET_COMPRESSION = "snappy"  # read by Athena, DuckDB and Spark alike
MAX_EXAMPLES = 3


class ContractError(Exception):
    """A payload that breaks its dataset's contract; the message names dataset, URL and cause."""

    def __init__(self, dataset: str, url: str, cause: str):
        self.dataset, self.url, self.cause = dataset, url, cause
        super().__init__(f"dataset {dataset}: {url}: {cause}")


# --------------------------------------------------------------------------------------------- fetch


@dataclass
class Fetched:
    """A dataset's response: either new bytes to validate, or proof that the source is unchanged."""

    dataset: str
    url: str
    status: Literal["new", "not_modified", "same_content"]
    content: bytes | None = None
    sha256: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    content_type: str | None = None
    seconds: float = 0.0

    @property
    def unchanged(self) -> bool:
        return self.status != "new"


def source_url(dataset: Dataset, dosm: str | None = None, datagovmy: str | None = None) -> str:
    base = dosm_base_url(dosm) if dataset.host == "dosm" else datagovmy_base_url(datagovmy)
    return f"{base}{dataset.path}"


def manifest_key(dataset: str) -> str:
    return f"raw/{dataset}/_manifest.json"


def fetch(client: httpx.Client, lake: Lake, dataset: Dataset, url: str, policy: http.RetryPolicy | None = None) -> Fetched:
    """GET the dataset conditionally (ETag / Last-Modified remembered in its manifest)."""
    started = time.perf_counter()
    source = (lake.read_json(manifest_key(dataset.name)) or {}).get("source") or {}
    headers = {}
    if source.get("etag"):
        headers["If-None-Match"] = source["etag"]
    if source.get("last_modified"):
        headers["If-Modified-Since"] = source["last_modified"]
    response = http.get(client, url, what=f"dataset {dataset.name}", headers=headers, policy=policy)
    fetched = Fetched(dataset=dataset.name, url=url, status="not_modified",
                      etag=response.headers.get("ETag") or source.get("etag"),
                      last_modified=response.headers.get("Last-Modified") or source.get("last_modified"),
                      content_type=response.headers.get("Content-Type"))
    if response.status_code == 200:
        fetched.content = response.content
        fetched.sha256 = hashlib.sha256(fetched.content).hexdigest()
        fetched.status = "same_content" if fetched.sha256 == source.get("sha256") else "new"
    fetched.seconds = round(time.perf_counter() - started, 3)
    return fetched


# ------------------------------------------------------------------------------------------ validate


def read_parquet_bytes(dataset: str, url: str, content: bytes | None, content_type: str | None = None) -> pa.Table:
    """Decode a payload as Parquet, or say precisely why it is not Parquet."""
    if not content:
        raise ContractError(dataset, url, "empty body (0 bytes)")
    head = content[:512].lstrip().lower()
    if not content.startswith(PARQUET_MAGIC):
        if head.startswith((b"<!doctype", b"<html", b"<?xml", b"<")):
            kind = "an HTML/XML page" if b"html" in head or b"<" in head[:1] else "markup"
            raise ContractError(dataset, url, f"received {kind}, not Parquet (content-type {content_type or 'unknown'}); "
                                              "an error page served with HTTP 200?")
        if head.startswith((b"{", b"[")):
            raise ContractError(dataset, url, f"received JSON, not Parquet (content-type {content_type or 'unknown'})")
        raise ContractError(dataset, url, f"not a Parquet file (first bytes {content[:8]!r}, expected b'PAR1')")
    if len(content) < 12 or not content.endswith(PARQUET_MAGIC):
        raise ContractError(dataset, url, f"truncated Parquet file ({len(content)} bytes, footer missing)")
    try:
        return pq.read_table(pa.BufferReader(content))
    except (pa.ArrowException, OSError) as exc:
        raise ContractError(dataset, url, f"corrupt Parquet file: {exc}") from None


def lake_column_name(source: str) -> str:
    """An Athena-safe column name for a column the contract does not know (new publisher columns)."""
    name = re.sub(r"[^0-9a-z_]+", "_", source.strip().lower()).strip("_") or "column"
    if name[0].isdigit():
        name = f"c_{name}"
    return RESERVED_RENAMES.get(name, name)


def _examples(original: pa.ChunkedArray, bad_mask: pa.ChunkedArray) -> str:
    values = pc.filter(original, bad_mask).slice(0, MAX_EXAMPLES).to_pylist()
    return ", ".join(repr(v) for v in values)


def _as_string(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    return column.cast(pa.string())


def _coerce_date(column: pa.ChunkedArray) -> pa.ChunkedArray:
    t = column.type
    if pa.types.is_date32(t):
        return column
    if pa.types.is_date64(t) or pa.types.is_timestamp(t):
        if pa.types.is_timestamp(t) and t.tz is not None:
            column = column.cast(pa.timestamp(t.unit))
        return column.cast(pa.date32())
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t):
        text = pc.utf8_trim_whitespace(_as_string(column))
        text = pc.utf8_slice_codeunits(text, 0, 10)  # '2024-01-01T00:00:00' and '2024-01-01 00:00:00' too
        parsed = pc.strptime(text, format="%Y-%m-%d", unit="s", error_is_null=True)
        bad = pc.and_(pc.is_null(parsed), pc.is_valid(text))
        if pc.any(bad).as_py():
            raise ValueError(f"{pc.sum(bad).as_py()} value(s) are not dates (YYYY-MM-DD), e.g. {_examples(column, bad)}")
        return parsed.cast(pa.date32())
    raise ValueError(f"type {t} cannot hold a date")


def _coerce_number(column: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    t = column.type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t) or pa.types.is_null(t):
        try:
            return column.cast(target)
        except pa.ArrowInvalid as exc:
            raise ValueError(f"cannot be represented as {target}: {exc}") from None
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t):
        text = pc.utf8_trim_whitespace(_as_string(column))
        text = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
        try:
            return text.cast(target)
        except pa.ArrowInvalid:
            kind = "integers" if pa.types.is_integer(target) else "numbers"
            values = text.to_pylist()
            bad = []
            for v in values:
                if v is None:
                    continue
                try:
                    (int if pa.types.is_integer(target) else float)(v)
                except ValueError:
                    bad.append(v)
            examples = ", ".join(repr(v) for v in bad[:MAX_EXAMPLES])
            raise ValueError(f"{len(bad)} value(s) are not {kind}, e.g. {examples}") from None
    raise ValueError(f"type {t} cannot hold {target}")


def _coerce_string(column: pa.ChunkedArray) -> pa.ChunkedArray:
    t = column.type
    if pa.types.is_string(t):
        return column
    if pa.types.is_large_string(t) or pa.types.is_dictionary(t) or pa.types.is_integer(t) or pa.types.is_null(t):
        return _as_string(column)
    raise ValueError(f"type {t} is not text")


def coerce(field_: Field, column: pa.ChunkedArray) -> pa.ChunkedArray:
    if field_.kind == "date":
        out = _coerce_date(column)
    elif field_.kind == "float":
        out = _coerce_number(column, pa.float64())
    elif field_.kind == "int":
        out = _coerce_number(column, pa.int64())
    else:
        out = _coerce_string(column)
    if not field_.nullable and out.null_count:
        raise ValueError(f"{out.null_count} null value(s) in a column that must always be set")
    return out


def conform(dataset: Dataset, url: str, table: pa.Table) -> pa.Table:
    """Apply the dataset's contract: required columns present, types coerced, lake names applied.

    Columns the contract does not know are kept (renamed to safe names) so the lake carries them.
    """
    if table.num_rows == 0:
        raise ContractError(dataset.name, url, "empty table (0 rows)")
    present = set(table.column_names)
    missing = [f.source for f in dataset.required if f.source not in present]
    if missing:
        raise ContractError(dataset.name, url, f"missing required column(s) {', '.join(missing)}; "
                                               f"the file has: {', '.join(table.column_names)}")
    names: list[str] = []
    columns: list[pa.ChunkedArray] = []
    for f in dataset.fields:
        if f.source not in present:
            continue
        try:
            columns.append(coerce(f, table.column(f.source)))
        except ValueError as exc:
            raise ContractError(dataset.name, url, f"column {f.source!r}: {exc}") from None
        names.append(f.name)
    for source in table.column_names:
        if dataset.field_by_source(source) is None:
            name = lake_column_name(source)
            if name in names or name in {"year", "month"}:
                name = f"{name}_src"
            names.append(name)
            columns.append(table.column(source))
    return pa.Table.from_arrays(columns, names=names)


# ---------------------------------------------------------------------------------------------- land


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

    @property
    def changed(self) -> bool:
        return bool(self.partitions_written or self.partitions_deleted)


def partition_slices(dataset: Dataset, table: pa.Table) -> list[tuple[str, pa.Table]]:
    """Split ``table`` into (``year=YYYY/month=MM``, rows) pairs, rows sorted by date within each."""
    date_field = dataset.date_field
    if date_field is None:
        return [("", table)]
    dates = table.column(date_field.name)
    # Days since epoch → (year*100 + month) keys without a Python loop; one stable sort, then runs.
    days = dates.cast(pa.int32()).to_numpy(zero_copy_only=False).astype("datetime64[D]")
    months = days.astype("datetime64[M]").astype(np.int64)  # months since 1970-01
    order = np.argsort(days, kind="stable")
    sorted_months = months[order]
    sorted_table = table.take(pa.array(order))
    cuts = np.flatnonzero(np.diff(sorted_months)) + 1
    starts = np.concatenate(([0], cuts))
    ends = np.concatenate((cuts, [len(sorted_months)]))
    out = []
    for start, end in zip(starts.tolist(), ends.tolist()):
        m = int(sorted_months[start])
        out.append((f"year={1970 + m // 12:04d}/month={m % 12 + 1:02d}", sorted_table.slice(start, end - start)))
    return out


def partition_object_key(dataset: str, partition: str) -> str:
    return f"raw/{dataset}/{partition}/data.parquet" if partition else f"raw/{dataset}/data.parquet"


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
    result = LandResult(dataset=dataset.name, status="landed", rows=table.num_rows, source_etag=fetched.etag,
                        columns=[(f.name, str(f.type)) for f in table.schema])
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
        "landed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "rows": table.num_rows,
        "columns": result.columns,
        "source": {"url": fetched.url, "etag": fetched.etag, "last_modified": fetched.last_modified,
                   "sha256": fetched.sha256, "bytes": len(fetched.content or b"")},
        "partitions": parts,
    }
    lake.write_json(manifest_key(dataset.name), manifest)
    live = {p["key"] for p in parts.values()}
    for key in lake.list(f"raw/{dataset.name}/"):
        if key.endswith(".parquet") and key not in live:
            lake.delete(key)
            partition = key[len(f"raw/{dataset.name}/"):].rsplit("/", 1)[0] if "/" in key[len(f"raw/{dataset.name}/"):] else ""
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


def quarantine(lake: Lake, fetched: Fetched, error: Exception) -> str:
    """Keep a rejected payload and the reason under ``quarantine/<dataset>/``; returns its folder key."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    folder = f"quarantine/{fetched.dataset}/{stamp}-{(fetched.sha256 or 'empty')[:12]}"
    lake.write(f"{folder}/payload.bin", fetched.content or b"")
    lake.write_json(f"{folder}/error.json", {
        "dataset": fetched.dataset, "url": fetched.url, "error": str(error),
        "etag": fetched.etag, "content_type": fetched.content_type, "bytes": len(fetched.content or b""),
        "quarantined_at": stamp,
    })
    return folder


# --------------------------------------------------------------------------------------------- tasks

from prefect import get_run_logger, task  # noqa: E402  (tasks below wrap the plain functions above)
from prefect.cache_policies import NO_CACHE  # noqa: E402


@dataclass
class Validated:
    """A fetched dataset that passed its contract (``table`` is None when the source was unchanged)."""

    fetched: Fetched
    table: pa.Table | None = None
    seconds: float = 0.0


# Payloads and tables are passed in memory between tasks: NO_CACHE keeps Prefect from hashing them.
@task(name="fetch-dataset", task_run_name="fetch-{dataset_name}", cache_policy=NO_CACHE)
def fetch_dataset(dataset_name: str, url: str, lake: Lake) -> Fetched:
    """Conditionally GET one dataset; retries transient faults inside (honouring Retry-After)."""
    from tasks.datasets import get_dataset

    with httpx.Client(follow_redirects=True, headers={"User-Agent": "insightflow/0.1"}) as client:
        fetched = fetch(client, lake, get_dataset(dataset_name), url)
    logger = get_run_logger()
    if fetched.status == "not_modified":
        logger.info("%s: source unchanged (HTTP 304 for ETag %s); nothing to land", dataset_name, fetched.etag)
    elif fetched.status == "same_content":
        logger.info("%s: source content identical (sha256 %s…); nothing to land", dataset_name, fetched.sha256[:12])
    else:
        logger.info("%s: fetched %d bytes in %.2fs", dataset_name, len(fetched.content or b""), fetched.seconds)
    return fetched


@task(name="validate-dataset", task_run_name="validate-{fetched.dataset}", cache_policy=NO_CACHE)
def validate_dataset(fetched: Fetched, lake: Lake) -> Validated:
    """Check the payload against its contract; a rejected payload goes to quarantine/ and fails the task."""
    from tasks.datasets import get_dataset

    if fetched.unchanged:
        return Validated(fetched)
    started = time.perf_counter()
    try:
        dataset = get_dataset(fetched.dataset)
        table = conform(dataset, fetched.url, read_parquet_bytes(fetched.dataset, fetched.url, fetched.content,
                                                                 fetched.content_type))
    except ContractError as exc:
        folder = quarantine(lake, fetched, exc)
        get_run_logger().error("%s (payload kept at %s)", exc, lake.uri(folder))
        raise
    return Validated(fetched, table, seconds=round(time.perf_counter() - started, 3))


@task(name="land-dataset", task_run_name="land-{validated.fetched.dataset}", cache_policy=NO_CACHE)
def land_dataset(validated: Validated, lake: Lake) -> LandResult:
    """Write the dataset's changed partitions to the lake, then its manifest."""
    from tasks.datasets import get_dataset

    fetched = validated.fetched
    if validated.table is None:
        if fetched.status == "same_content":
            remember_source(lake, fetched)
        previous = lake.read_json(manifest_key(fetched.dataset)) or {}
        parts = sorted((previous.get("partitions") or {}))
        return LandResult(dataset=fetched.dataset, status="unchanged", rows=previous.get("rows", 0),
                          bytes=sum(p.get("bytes", 0) for p in (previous.get("partitions") or {}).values()),
                          partitions_unchanged=parts, columns=[tuple(c) for c in previous.get("columns", [])],
                          source_etag=fetched.etag,
                          note="HTTP 304 Not Modified" if fetched.status == "not_modified" else "same content hash")
    result = land(lake, get_dataset(fetched.dataset), validated.table, fetched)
    get_run_logger().info("%s: %d rows; %d partition(s) written, %d unchanged, %d deleted", result.dataset, result.rows,
                          len(result.partitions_written), len(result.partitions_unchanged), len(result.partitions_deleted))
    return result
