"""Type names across the three vocabularies a query crosses: Glue's (Hive DDL), Athena's results and Arrow's.

Glue stores Hive names (``string``, ``int``, ``bigint``, ``double``, ``date``, ``decimal(18,2)``); Athena's
ResultSetMetadata reports Trino names (``varchar``, ``integer``, ...), which PyAthena converts rows by;
DuckDB hands back Arrow. A Glue type is the contract for a Parquet column: a file whose column cannot be
read as that type is Athena's HIVE_BAD_DATA, not a silent cast.
"""

from __future__ import annotations

import re

import pyarrow as pa

_SCALAR_GLUE = {
    "string": pa.string(),
    "varchar": pa.string(),
    "char": pa.string(),
    "tinyint": pa.int8(),
    "smallint": pa.int16(),
    "int": pa.int32(),
    "integer": pa.int32(),
    "bigint": pa.int64(),
    "float": pa.float32(),
    "real": pa.float32(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("ms"),
    "binary": pa.binary(),
}


def glue_to_arrow(glue_type: str) -> pa.DataType:
    """The Arrow type a Glue column type reads as (complex types: Arrow's nearest, recursively)."""
    t = glue_type.strip().lower()
    base = re.sub(r"\(.*\)$", "", t)
    if base in _SCALAR_GLUE:
        return _SCALAR_GLUE[base]
    if base == "decimal":
        p, _, s = t[len("decimal(") : -1].partition(",")
        return pa.decimal128(int(p), int(s or 0))
    if t.startswith("array<"):
        return pa.list_(glue_to_arrow(t[6:-1]))
    raise ValueError(f"unsupported Glue type {glue_type!r}")


def arrow_to_glue(dtype: pa.DataType) -> str:
    """The Glue (Hive) column type Athena's CTAS would register for an Arrow column."""
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return "string"
    if pa.types.is_null(dtype):
        return "string"
    names = {
        pa.int8(): "tinyint",
        pa.int16(): "smallint",
        pa.int32(): "int",
        pa.int64(): "bigint",
        pa.float32(): "float",
        pa.float64(): "double",
        pa.bool_(): "boolean",
        pa.date32(): "date",
    }
    if dtype in names:
        return names[dtype]
    if pa.types.is_unsigned_integer(dtype):
        return "bigint"
    if pa.types.is_timestamp(dtype):
        return "timestamp"
    if pa.types.is_decimal(dtype):
        return f"decimal({dtype.precision},{dtype.scale})"
    if pa.types.is_list(dtype):
        return f"array<{arrow_to_glue(dtype.value_type)}>"
    if pa.types.is_binary(dtype):
        return "binary"
    raise ValueError(f"no Glue type for {dtype}")


def athena_result_type(dtype: pa.DataType) -> str:
    """The Trino type name Athena reports in ResultSetMetadata for an Arrow column."""
    glue = arrow_to_glue(dtype)
    return {"string": "varchar", "int": "integer", "float": "real"}.get(glue, glue)


def arrow_for_storage(dtype: pa.DataType) -> pa.DataType:
    """The Arrow type a result column is written to Parquet as (timestamps in ms, no time zone, as Athena's)."""
    if pa.types.is_timestamp(dtype):
        return pa.timestamp("ms")
    if pa.types.is_null(dtype) or pa.types.is_large_string(dtype):
        return pa.string()
    if pa.types.is_unsigned_integer(dtype):
        return pa.int64()
    return dtype


def compatible(file_type: pa.DataType, glue_type: pa.DataType) -> bool:
    """Whether Athena's Parquet reader reads a file column as the Glue column's type (Hive's widening only)."""
    if file_type == glue_type:
        return True
    ints = [pa.int8(), pa.int16(), pa.int32(), pa.int64()]
    if file_type in ints and glue_type in ints:
        return ints.index(file_type) <= ints.index(glue_type)
    if file_type == pa.float32() and glue_type == pa.float64():
        return True
    if pa.types.is_timestamp(file_type) and pa.types.is_timestamp(glue_type):
        return True
    if pa.types.is_string(file_type) and pa.types.is_string(glue_type):
        return True
    if pa.types.is_large_string(file_type) and pa.types.is_string(glue_type):
        return True
    if pa.types.is_dictionary(file_type):
        return compatible(file_type.value_type, glue_type)
    if pa.types.is_decimal(file_type) and pa.types.is_decimal(glue_type):
        return file_type.scale == glue_type.scale and file_type.precision <= glue_type.precision
    return bool(pa.types.is_null(file_type))
