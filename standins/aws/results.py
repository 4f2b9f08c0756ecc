"""Query results as Athena hands them out: typed ResultSetMetadata, string cells, pages, and files in S3.

Athena returns every cell as a string (``VarCharValue``; absent for NULL) with the column's Trino type in
``ResultSetMetadata.ColumnInfo``, which is what PyAthena converts by; a SELECT's first row repeats the
column labels. It also writes the result to the output location as ``<id>.csv`` plus ``<id>.csv.metadata``
(DDL: ``<id>.txt``), which tools such as PyAthena's pandas cursor read directly.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
import math

import pyarrow as pa

from standins.aws.types import athena_result_type

PAGE_MAX = 1000  # Athena's MaxResults ceiling for GetQueryResults


def cell(value) -> str | None:
    """A value as Athena's VarCharValue (None for NULL)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None).isoformat(sep=" ", timespec="milliseconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join("null" if v is None else str(cell(v)) for v in value) + "]"
    return str(value)


def column_info(schema: pa.Schema) -> list[dict]:
    info = []
    for f in schema:
        kind = athena_result_type(f.type)
        precision, scale = (
            (f.type.precision, f.type.scale)
            if pa.types.is_decimal(f.type)
            else ({"integer": 10, "bigint": 19, "double": 17, "real": 7, "varchar": 2147483647}.get(kind, 0), 0)
        )
        info.append(
            {
                "CatalogName": "hive",
                "SchemaName": "",
                "TableName": "",
                "Name": f.name,
                "Label": f.name,
                "Type": kind,
                "Precision": precision,
                "Scale": scale,
                "Nullable": "UNKNOWN",
                "CaseSensitive": kind == "varchar",
            }
        )
    return info


def string_rows(table: pa.Table) -> list[list[str | None]]:
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    return [[cell(col[r]) for col in columns] for r in range(table.num_rows)]


def page(
    rows: list[list[str | None]], labels: list[str] | None, token: str | None, max_results: int
) -> tuple[list, str | None]:
    """One GetQueryResults page: the label row first on the first page of a SELECT, then data rows."""
    everything = ([labels] if labels is not None else []) + rows
    start = int(token or 0)
    size = max(1, min(max_results or PAGE_MAX, PAGE_MAX))
    chunk = everything[start : start + size]
    nxt = str(start + size) if start + size < len(everything) else None
    return [{"Data": [{} if v is None else {"VarCharValue": v} for v in row]} for row in chunk], nxt


def write_output(s3, location: str, query_id: str, table: pa.Table | None, statement_type: str) -> str:
    """Write the result files under ``location``; returns the result's S3 URI."""
    bucket, _, prefix = location[5:].partition("/")
    prefix = prefix.rstrip("/") + "/" if prefix.strip("/") else ""
    if table is None or statement_type == "DDL":
        key = f"{prefix}{query_id}.txt"
        s3.put_object(Bucket=bucket, Key=key, Body=b"")
        return f"s3://{bucket}/{key}"
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(table.column_names)
    for row in string_rows(table):
        writer.writerow(["" if v is None else v for v in row])
    key = f"{prefix}{query_id}.csv"
    s3.put_object(Bucket=bucket, Key=key, Body=out.getvalue().encode())
    # Athena's .metadata is a binary protobuf; this one carries the same ColumnInfo as JSON.
    s3.put_object(Bucket=bucket, Key=f"{key}.metadata", Body=json.dumps(column_info(table.schema)).encode())
    return f"s3://{bucket}/{key}"
