"""Validate a fetched payload against its dataset's contract, or quarantine it with the reason.

Decoding says precisely why a body is not Parquet (HTML error page with 200, JSON, truncated or
corrupt file); the contract coerces the types the publishers actually use and keeps new columns.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.core.lake import Lake
from tasks.insightflow.contracts import RESERVED_RENAMES, Dataset, Field, get_dataset
from tasks.insightflow.ingest.fetch import Fetched

PARQUET_MAGIC = b"PAR1"
MAX_EXAMPLES = 3


class ContractError(Exception):
    """A payload that breaks its dataset's contract; the message names dataset, URL and cause."""

    transient = False  # fetching the same payload again breaks it again (tasks/core/orchestration.py)

    def __init__(self, dataset: str, url: str, cause: str):
        self.dataset, self.url, self.cause = dataset, url, cause
        super().__init__(f"dataset {dataset}: {url}: {cause}")


def read_parquet_bytes(dataset: str, url: str, content: bytes | None, content_type: str | None = None) -> pa.Table:
    """Decode a payload as Parquet, or say precisely why it is not Parquet."""
    if not content:
        raise ContractError(dataset, url, "empty body (0 bytes)")
    head = content[:512].lstrip().lower()
    if not content.startswith(PARQUET_MAGIC):
        if head.startswith((b"<!doctype", b"<html", b"<?xml", b"<")):
            kind = "an HTML/XML page" if b"html" in head or b"<" in head[:1] else "markup"
            raise ContractError(
                dataset,
                url,
                f"received {kind}, not Parquet (content-type {content_type or 'unknown'}); "
                "an error page served with HTTP 200?",
            )
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
            raise ValueError(
                f"{pc.sum(bad).as_py()} value(s) are not dates (YYYY-MM-DD), e.g. {_examples(column, bad)}"
            )
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
        raise ContractError(
            dataset.name,
            url,
            f"missing required column(s) {', '.join(missing)}; the file has: {', '.join(table.column_names)}",
        )
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


def quarantine(lake: Lake, fetched: Fetched, error: Exception) -> str:
    """Keep a rejected payload and the reason under ``quarantine/<dataset>/``; returns its folder key."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    folder = f"quarantine/{fetched.dataset}/{stamp}-{(fetched.sha256 or 'empty')[:12]}"
    lake.write(f"{folder}/payload.bin", fetched.content or b"")
    lake.write_json(
        f"{folder}/error.json",
        {
            "dataset": fetched.dataset,
            "url": fetched.url,
            "error": str(error),
            "etag": fetched.etag,
            "content_type": fetched.content_type,
            "bytes": len(fetched.content or b""),
            "quarantined_at": stamp,
        },
    )
    return folder


@dataclass
class Validated:
    """A fetched dataset that passed its contract (``table`` is None when the source was unchanged)."""

    fetched: Fetched
    table: pa.Table | None = None
    seconds: float = 0.0


@task(name="validate-dataset", task_run_name="validate-{fetched.dataset}", cache_policy=NO_CACHE)
def validate_dataset(fetched: Fetched, lake: Lake) -> Validated:
    """Check the payload against its contract; a rejected payload goes to quarantine/ and fails the task."""
    if fetched.unchanged:
        return Validated(fetched)
    started = time.perf_counter()
    try:
        dataset = get_dataset(fetched.dataset)
        table = conform(
            dataset,
            fetched.url,
            read_parquet_bytes(fetched.dataset, fetched.url, fetched.content, fetched.content_type),
        )
    except ContractError as exc:
        folder = quarantine(lake, fetched, exc)
        get_run_logger().error("%s (payload kept at %s)", exc, lake.uri(folder))
        raise
    return Validated(fetched, table, seconds=round(time.perf_counter() - started, 3))
