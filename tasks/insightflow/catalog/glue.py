"""Keep the Glue tables and partitions of the S3 lake in step with what was landed.

Two modes:
- ``partitions`` (default): keep one external Parquet table per dataset in sync with the dataset
  contract and the columns just landed, then register exactly the partitions this run wrote and
  drop the ones it deleted. Cheap (a few API calls), immediate, no crawler to pay for or wait on.
- ``crawler``: start an existing Glue crawler over the lake (or join the crawl already running),
  wait for it with backoff and an overall timeout, and fail with the crawler's own error.

The lake keeps ``_manifest.json`` beside each dataset's partitions; Athena (Hive) skips files whose
names start with ``_`` or ``.``, so it never tries to read it as Parquet (it matters for msic, whose
single file sits directly in the table location).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from tasks.insightflow.contracts import Dataset, get_dataset
from tasks.insightflow.ingest.history import VERSION_COLUMNS, history_prefix, history_table_name

if TYPE_CHECKING:
    from tasks.core.lake import Lake


PARTITION_KEYS = ("year", "month")
PARQUET = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {
        "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
        "Parameters": {"serialization.format": "1"},
    },
}
# Glue API limits per call.
CREATE_BATCH, DELETE_BATCH = 100, 25


TRANSIENT_GLUE_ERRORS = {
    "ThrottlingException",
    "ConcurrentModificationException",
    "InternalServiceException",
    "OperationTimeoutException",
    "ServiceUnavailableException",
    "ResourceNumberLimitExceededException",
}

_ARROW_TO_HIVE = {
    "string": "string",
    "large_string": "string",
    "double": "double",
    "float": "float",
    "halffloat": "float",
    "int64": "bigint",
    "int32": "int",
    "int16": "smallint",
    "int8": "tinyint",
    "uint8": "smallint",
    "uint16": "int",
    "uint32": "bigint",
    "bool": "boolean",
    "date32[day]": "date",
    "date64[ms]": "date",
    "binary": "binary",
    "large_binary": "binary",
}
_KIND_TO_HIVE = {"string": "string", "date": "date", "float": "double", "int": "bigint"}


# A boto3 Glue client (botocore builds its class at run time, so there is nothing finer to annotate with).
GlueClient = Any


@dataclass
class CatalogResult:
    """What cataloguing one landed dataset changed in Glue."""

    dataset: str
    table: str
    table_action: Literal["created", "updated", "unchanged"]
    partitions_created: list[str] = field(default_factory=list)
    partitions_updated: list[str] = field(default_factory=list)
    partitions_deleted: list[str] = field(default_factory=list)
    # the <dataset>_history table: every landed version (tasks/insightflow/ingest/history.py)
    history_partitions_created: list[str] = field(default_factory=list)


def hive_type(arrow_type: str) -> str:
    """The Glue/Hive column type for an Arrow type string (``double`` -> ``double``, ``int64`` -> ``bigint``)."""
    if arrow_type in _ARROW_TO_HIVE:
        return _ARROW_TO_HIVE[arrow_type]
    if arrow_type.startswith("timestamp["):
        return "timestamp"
    if match := re.fullmatch(r"decimal(?:128|256)?\((\d+), ?(\d+)\)", arrow_type):
        return f"decimal({match[1]},{match[2]})"
    raise ValueError(f"no Glue type for Arrow type {arrow_type!r}")


def table_columns(
    dataset: Dataset, landed: Sequence[tuple[str, str]], existing: Sequence[dict] = ()
) -> list[dict[str, str]]:
    """Glue columns for ``dataset``: the table's current columns, then the landed file's, then the contract's.

    Columns are only ever added (the publisher adds columns; old partitions still carry the old ones).
    A landed type wins over a stale catalog type. Contract columns missing from this file (optional
    measures) are declared too, so models can select them and read NULL.
    """
    landed_types = {name: hive_type(arrow) for name, arrow in landed if name not in PARTITION_KEYS}
    columns: dict[str, str] = {c["Name"]: landed_types.get(c["Name"], c["Type"]) for c in existing}
    for name, glue_type in landed_types.items():
        columns.setdefault(name, glue_type)
    for f in dataset.fields:
        columns.setdefault(f.name, _KIND_TO_HIVE[f.kind])
    return [{"Name": name, "Type": glue_type} for name, glue_type in columns.items()]


def table_input(
    dataset: Dataset, columns: list[dict[str, str]], location: str, name: str | None = None
) -> dict[str, Any]:
    """The Glue ``TableInput`` for an external Parquet table at ``location`` (an ``s3://…/`` folder)."""
    return {
        "Name": name or dataset.name,
        "Description": dataset.description if name is None else f"Every landed version: {dataset.description}",
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE"},
        "PartitionKeys": [{"Name": k, "Type": "string"} for k in PARTITION_KEYS] if dataset.partition_by_date else [],
        "StorageDescriptor": {"Columns": columns, "Location": location, **PARQUET},
    }


def partition_values(partition: str) -> list[str]:
    """``"year=2024/month=01"`` -> ``["2024", "01"]`` (Hive-style key order must match PARTITION_KEYS)."""
    pairs = [p.split("=", 1) for p in partition.strip("/").split("/")]
    if [k for k, *_ in pairs] != list(PARTITION_KEYS) or any(len(p) != 2 or not p[1] for p in pairs):
        raise ValueError(f"partition {partition!r} is not of the form year=YYYY/month=MM")
    return [v for _, v in pairs]


def partition_input(table: dict[str, Any], partition: str) -> dict[str, Any]:
    """The Glue ``PartitionInput`` for ``partition`` of ``table`` (its descriptor, located in the partition folder)."""
    descriptor = dict(table["StorageDescriptor"])
    descriptor["Location"] = descriptor["Location"].rstrip("/") + f"/{partition.strip('/')}/"
    return {"Values": partition_values(partition), "StorageDescriptor": descriptor}


def _error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    return response.get("Error", {}).get("Code") if isinstance(response, dict) else None


def _entry_code(error: dict) -> str | None:
    return error.get("ErrorDetail", {}).get("ErrorCode")


def _chunks(items: Sequence, size: int) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def ensure_database(glue: GlueClient, database: str) -> bool:
    """Create the Glue database if it does not exist; True if it was created."""
    try:
        glue.get_database(Name=database)
        return False
    except glue.exceptions.EntityNotFoundException:
        pass
    try:
        glue.create_database(DatabaseInput={"Name": database, "Description": "InsightFlow raw lake (Parquet on S3)"})
    except glue.exceptions.AlreadyExistsException:
        return False
    return True


def sync_table(
    glue: GlueClient,
    database: str,
    dataset: Dataset,
    landed: Sequence[tuple[str, str]],
    location: str,
    name: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """Create or update the dataset's table (or, with ``name``, its history table); returns (action, TableInput)."""
    try:
        current = glue.get_table(DatabaseName=database, Name=name or dataset.name)["Table"]
    except glue.exceptions.EntityNotFoundException:
        current = None
    existing = current["StorageDescriptor"]["Columns"] if current else []
    wanted = table_input(dataset, table_columns(dataset, landed, existing), location, name)
    if current is None:
        glue.create_table(DatabaseName=database, TableInput=wanted)
        return "created", wanted
    same = (
        [{"Name": c["Name"], "Type": c["Type"]} for c in existing] == wanted["StorageDescriptor"]["Columns"]
        and current["StorageDescriptor"].get("Location") == location
        and [k["Name"] for k in current.get("PartitionKeys", [])] == [k["Name"] for k in wanted["PartitionKeys"]]
        and current["StorageDescriptor"].get("SerdeInfo", {}).get("SerializationLibrary")
        == PARQUET["SerdeInfo"]["SerializationLibrary"]
    )
    if same:
        return "unchanged", wanted
    glue.update_table(DatabaseName=database, TableInput=wanted)
    return "updated", wanted


def _raise_batch_errors(errors: list[dict], action: str, table: str) -> None:
    if errors:
        details = "; ".join(
            f"{'/'.join(e.get('PartitionValues') or e.get('PartitionValueList') or [])}: "
            f"{e['ErrorDetail'].get('ErrorCode')} {e['ErrorDetail'].get('ErrorMessage', '')}".strip()
            for e in errors
        )
        raise RuntimeError(f"Glue {action} failed for table {table}: {details}")


def _descriptor_differs(current: dict, wanted: dict) -> bool:
    have, want = current.get("StorageDescriptor", {}), wanted["StorageDescriptor"]
    return (
        [(c["Name"], c["Type"]) for c in have.get("Columns", [])] != [(c["Name"], c["Type"]) for c in want["Columns"]]
        or have.get("Location", "").rstrip("/") != want["Location"].rstrip("/")
        or have.get("SerdeInfo", {}).get("SerializationLibrary") != want["SerdeInfo"]["SerializationLibrary"]
    )


def register_partitions(
    glue: GlueClient, database: str, table: dict[str, Any], written: Sequence[str], ensure: Sequence[str] = ()
) -> tuple[list[str], list[str]]:
    """Create the ``written`` partitions and refresh those that already exist if their schema or location changed.

    Partitions in ``ensure`` are created if missing but otherwise left alone (their files did not change).
    Returns (created, updated). Glue's batch calls report per-partition failures in ``Errors``
    instead of raising, so each entry is checked.
    """
    name = table["Name"]
    offered = list(dict.fromkeys([*written, *ensure]))
    by_values = {tuple(partition_values(p)): p for p in offered}
    created, existing = [], []
    for chunk in _chunks(offered, CREATE_BATCH):
        inputs = [partition_input(table, p) for p in chunk]
        response = glue.batch_create_partition(DatabaseName=database, TableName=name, PartitionInputList=inputs)
        errors = response.get("Errors", [])
        already = {tuple(e["PartitionValues"]) for e in errors if _entry_code(e) == "AlreadyExistsException"}
        _raise_batch_errors(
            [e for e in errors if _entry_code(e) != "AlreadyExistsException"], "batch_create_partition", name
        )
        created += [p for p in chunk if tuple(partition_values(p)) not in already]
        existing += [by_values[v] for v in already if by_values[v] in written]

    updated: list[str] = []
    for chunk in _chunks(sorted(existing), CREATE_BATCH):
        wanted = {tuple(partition_values(p)): partition_input(table, p) for p in chunk}
        found = glue.batch_get_partition(
            DatabaseName=database, TableName=name, PartitionsToGet=[{"Values": list(v)} for v in wanted]
        )["Partitions"]
        stale = [tuple(f["Values"]) for f in found if _descriptor_differs(f, wanted[tuple(f["Values"])])]
        if stale:
            entries = [{"PartitionValueList": list(v), "PartitionInput": wanted[v]} for v in stale]
            response = glue.batch_update_partition(DatabaseName=database, TableName=name, Entries=entries)
            errors = response.get("Errors", [])
            _raise_batch_errors(errors, "batch_update_partition", name)
            updated += [by_values[v] for v in stale]
    return sorted(created), sorted(updated)


def delete_partitions(glue: GlueClient, database: str, table: str, deleted: Sequence[str]) -> list[str]:
    """Drop the partitions whose data the lake no longer holds; ones already gone are fine."""
    for chunk in _chunks(list(deleted), DELETE_BATCH):
        keys = [{"Values": partition_values(p)} for p in chunk]
        response = glue.batch_delete_partition(DatabaseName=database, TableName=table, PartitionsToDelete=keys)
        errors = response.get("Errors", [])
        _raise_batch_errors(
            [e for e in errors if _entry_code(e) != "EntityNotFoundException"], "batch_delete_partition", table
        )
    return sorted(deleted)


def catalog_landed(glue: GlueClient, database: str, lake: Lake, result: Any) -> CatalogResult:
    """Bring the Glue table of one landed dataset up to date (``result`` is ingest's ``LandResult``)."""
    dataset = get_dataset(result.dataset)
    location = lake.uri(f"raw/{dataset.name}/")
    if not location.startswith("s3://"):
        raise ValueError(f"Glue tables need an S3 lake; {dataset.name} landed in {location}")
    action, table = sync_table(glue, database, dataset, result.columns, location)
    # History rows are the partition's rows plus the version columns; the table exists from the first landing.
    _, history = sync_table(
        glue,
        database,
        dataset,
        [*result.columns, *VERSION_COLUMNS],
        lake.uri(history_prefix(dataset.name)),
        name=history_table_name(dataset.name),
    )
    if not dataset.partition_by_date:
        return CatalogResult(dataset.name, dataset.name, action)
    # Partitions only ever gain versions; a partition the source dropped keeps its history. Offered like the
    # raw partitions below, so a run that died before cataloguing is made good by the next.
    history_created, _ = register_partitions(
        glue,
        database,
        history,
        result.versions_recorded,
        ensure=[*result.partitions_written, *result.partitions_unchanged],
    )
    # A run that died after landing but before cataloguing leaves partitions that are "unchanged" now:
    # offer them too; Glue answers AlreadyExists for the ones it has, which costs nothing.
    created, updated = register_partitions(
        glue, database, table, result.partitions_written, ensure=result.partitions_unchanged
    )
    deleted = delete_partitions(glue, database, dataset.name, result.partitions_deleted)
    return CatalogResult(dataset.name, dataset.name, action, created, updated, deleted, history_created)
