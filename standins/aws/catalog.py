"""The Glue catalog and S3 data a query reads and writes, reached through moto with boto3.

Tables are what Glue says they are: the columns and types of the table, read from the Parquet objects
under its location, or under each partition's location with the partition values (typed by the
partition keys) added as columns. Views are Glue tables of type VIRTUAL_VIEW holding the Presto view
text (``/* Presto View: <base64 json> */``) as Athena and dbt-athena write them. Bytes scanned are the
sizes of the Parquet column chunks a query's columns need, which is what Athena bills by.
"""

from __future__ import annotations

import base64
import io
import json
import uuid
from dataclasses import dataclass, field

import boto3
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from botocore.config import Config

from standins.aws.caller import ACCOUNT, Caller
from standins.aws.errors import AthenaQueryError
from standins.aws.types import arrow_to_glue, athena_result_type, compatible, glue_to_arrow

PRESTO_VIEW = "/* Presto View: {} */"
# Decoded Parquet objects by (bucket, key, ETag, size): dbt reads the same raw files in query after query.
# An object rewritten under the same key has a new ETag, so a stale entry is never hit.
_DECODED: dict[tuple, tuple] = {}


def split_s3(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` → ``("bucket", "a/b/")`` (a prefix always ends with a slash)."""
    if not uri.startswith("s3://"):
        raise AthenaQueryError("INVALID_TABLE_PROPERTY", f"location {uri!r} is not an s3:// URI")
    bucket, _, key = uri[5:].partition("/")
    return bucket, (key.rstrip("/") + "/") if key.strip("/") else ""


@dataclass
class Scan:
    """What one query read: bytes of the Parquet column chunks it needed, over all tables."""

    bytes: int = 0
    tables: list[str] = field(default_factory=list)


class Catalog:
    """Glue + S3 for one query, through the endpoint the stand-in forwards to moto."""

    def __init__(self, endpoint: str, caller: Caller) -> None:
        config = Config(retries={"max_attempts": 2, "mode": "standard"})
        # Athena reads and writes S3 and Glue as the caller (standins/aws/caller.py)
        kw = {"endpoint_url": endpoint, "region_name": caller.region, "config": config, **caller.client_kwargs()}
        self.glue = boto3.client("glue", **kw)
        self.s3 = boto3.client("s3", **kw)
        self.region = caller.region
        # (operation, s3:// path) of the latest S3 call: a refused one is named in the query's error
        self.last_s3: tuple[str, str] | None = None
        self.s3.meta.events.register("provide-client-params.s3", self._remember_s3)

    def _remember_s3(self, params: dict, model, **_) -> None:
        self.last_s3 = (model.name, f"s3://{params.get('Bucket')}/{params.get('Key') or params.get('Prefix') or ''}")

    # --- reading -------------------------------------------------------------------------------
    def get_table(self, database: str, name: str) -> dict | None:
        try:
            return self.glue.get_table(DatabaseName=database.lower(), Name=name.lower())["Table"]
        except (self.glue.exceptions.EntityNotFoundException, self.glue.exceptions.InvalidInputException):
            return None

    def database_exists(self, database: str) -> bool:
        try:
            self.glue.get_database(Name=database.lower())
            return True
        except self.glue.exceptions.EntityNotFoundException:
            return False

    def partitions(self, table: dict) -> list[dict]:
        """A table's Glue partitions: from moto's backend when in this process (no JSON round trip), else the API."""
        try:
            from moto.glue.models import glue_backends

            backend = glue_backends[ACCOUNT][self.region]
            return [p.as_dict() for p in backend.get_partitions(table["DatabaseName"], table["Name"], "")]
        except ImportError:
            pass
        pages = self.glue.get_paginator("get_partitions").paginate(
            DatabaseName=table["DatabaseName"], TableName=table["Name"]
        )
        return [p for page in pages for p in page["Partitions"]]

    def objects(self, location: str) -> list[dict]:
        """Data objects under a location, skipping Hive's hidden files (``_SUCCESS``, ``.crc``, folders)."""
        bucket, prefix = split_s3(location)
        found = []
        for obj in self._list(bucket, prefix):
            name = obj["Key"].rsplit("/", 1)[-1]
            if obj["Size"] and not name.startswith(("_", ".")) and not name.endswith("$folder$"):
                found.append({"Bucket": bucket, **obj})
        return found

    def _list(self, bucket: str, prefix: str) -> list[dict]:
        fake = _moto_bucket(bucket)
        if fake is None:
            pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            return [o for page in pages for o in page.get("Contents", [])]
        return [{"Key": k, "Size": v.size, "ETag": v.etag} for k, v in list(fake.keys.items()) if k.startswith(prefix)]

    def _get(self, bucket: str, key: str) -> bytes:
        fake = _moto_bucket(bucket)
        if fake is not None and key in fake.keys:
            return fake.keys[key].value
        return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    def read_table(self, table: dict, columns: set[str] | None, scan: Scan) -> pa.Table:
        """The rows of a Glue table, typed as Glue says; ``columns`` limits what is counted as scanned."""
        sd = table["StorageDescriptor"]
        cols = [(c["Name"].lower(), c["Type"]) for c in sd.get("Columns", [])]
        keys = [(k["Name"].lower(), k["Type"]) for k in table.get("PartitionKeys", [])]
        schema = pa.schema([(n, glue_to_arrow(t)) for n, t in cols + keys])
        name = f"{table['DatabaseName']}.{table['Name']}"
        if keys:
            parts = [(p["Values"], p["StorageDescriptor"]["Location"]) for p in self.partitions(table)]
        else:
            parts = [([], sd["Location"])]
        pieces = []
        listed = self.objects(sd["Location"]) if sd.get("Location") else []
        for values, location in parts:
            prefix = split_s3(location)[1]
            under = [o for o in listed if o["Key"].startswith(prefix)] if location.startswith(sd["Location"]) else None
            for obj in under if under is not None else self.objects(location):
                data = self._read_object(obj, cols, name, columns, scan)
                for (key, ktype), value in zip(keys, values, strict=True):
                    array = pa.array([value] * data.num_rows, pa.string())
                    data = data.append_column(key, pc.cast(array, glue_to_arrow(ktype)))
                pieces.append(data.select(schema.names).cast(schema))
        scan.tables.append(name)
        return pa.concat_tables(pieces) if pieces else schema.empty_table()

    def _read_object(self, obj: dict, cols: list, table: str, needed: set[str] | None, scan: Scan) -> pa.Table:
        cache_key = (obj["Bucket"], obj["Key"], obj.get("ETag"), obj["Size"])
        parquet, data = _DECODED.get(cache_key) or (None, None)
        if parquet is None:
            body = self._get(obj["Bucket"], obj["Key"])
            try:
                parquet = pq.ParquetFile(io.BytesIO(body))
                data = parquet.read()
            except Exception as exc:  # not Parquet at all
                raise AthenaQueryError(
                    "HIVE_CANNOT_OPEN_SPLIT", f"Error opening Hive split s3://{obj['Bucket']}/{obj['Key']}: {exc}"
                ) from exc
            if obj.get("ETag"):
                if len(_DECODED) > 20000:
                    _DECODED.clear()
                _DECODED[cache_key] = (parquet, data)
        file_schema = parquet.schema_arrow
        by_name = {f.name.lower(): f for f in file_schema}
        meta = parquet.metadata
        for i, (col, gtype) in enumerate(cols):
            fld = by_name.get(col)
            if fld is not None and not compatible(fld.type, glue_to_arrow(gtype)):
                raise AthenaQueryError(
                    "HIVE_BAD_DATA",
                    f"Field {col}'s type {athena_result_type(fld.type)} in parquet file "
                    f"s3://{obj['Bucket']}/{obj['Key']} is incompatible with type {gtype} defined in table schema",
                )
            if fld is not None and (needed is None or col in needed):
                j = file_schema.get_field_index(fld.name)
                scan.bytes += sum(meta.row_group(r).column(j).total_compressed_size for r in range(meta.num_row_groups))
            del i
        arrays = []
        for col, gtype in cols:
            fld = by_name.get(col)
            target = glue_to_arrow(gtype)
            if fld is None:  # a column added to the table after this file was written reads as NULL
                arrays.append(pa.nulls(data.num_rows, target))
            else:
                arrays.append(pc.cast(data.column(fld.name), target))
        return pa.table(arrays, names=[c for c, _ in cols]) if cols else pa.table({})

    # --- writing -------------------------------------------------------------------------------
    def ensure_empty(self, location: str) -> None:
        if self.objects(location):
            raise AthenaQueryError(
                "HIVE_PATH_ALREADY_EXISTS",
                f"Target directory for table already exists: {location}. You may need to manually clean the "
                "data at location before retrying. Athena will not delete data in your account.",
            )

    def write_files(self, location: str, data: pa.Table, keys: list[str], query_id: str) -> list[list[str]]:
        """Parquet under ``location`` (one file per partition directory); returns the partitions' values."""
        bucket, prefix = split_s3(location)
        if not keys:
            if data.num_rows:
                self._put(bucket, f"{prefix}{query_id}_{uuid.uuid4().hex[:8]}.parquet", data)
            return []
        written = []
        combos = data.select(keys).group_by(keys).aggregate([]).to_pylist()
        for combo in combos:
            mask = None
            for k in keys:
                cond = pc.is_null(data[k]) if combo[k] is None else pc.equal(data[k], pa.scalar(combo[k], data[k].type))
                mask = cond if mask is None else pc.and_(mask, cond)
            values = ["__HIVE_DEFAULT_PARTITION__" if combo[k] is None else str(combo[k]) for k in keys]
            path = "/".join(f"{k}={v}" for k, v in zip(keys, values, strict=True))
            part = data.filter(mask).drop_columns(keys)
            self._put(bucket, f"{prefix}{path}/{query_id}_{uuid.uuid4().hex[:8]}.parquet", part)
            written.append(values)
        return written

    def _put(self, bucket: str, key: str, data: pa.Table) -> None:
        sink = io.BytesIO()
        pq.write_table(data, sink, compression="snappy")
        self.s3.put_object(Bucket=bucket, Key=key, Body=sink.getvalue())

    def register_table(
        self, database: str, name: str, schema: pa.Schema, keys: list[str], location: str, fmt: str = "parquet"
    ) -> None:
        columns = [{"Name": f.name, "Type": arrow_to_glue(f.type)} for f in schema if f.name not in keys]
        partition_keys = [{"Name": k, "Type": arrow_to_glue(schema.field(k).type)} for k in keys]
        serde = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
        self.glue.create_table(
            DatabaseName=database,
            TableInput={
                "Name": name,
                "TableType": "EXTERNAL_TABLE",
                "Parameters": {"EXTERNAL": "TRUE", "classification": fmt, "has_encrypted_data": "false"},
                "PartitionKeys": partition_keys,
                "StorageDescriptor": {
                    "Columns": columns,
                    "Location": location.rstrip("/"),
                    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                    "SerdeInfo": {"SerializationLibrary": serde, "Parameters": {"serialization.format": "1"}},
                },
            },
        )

    def add_partitions(self, table: dict, partitions: list[list[str]]) -> None:
        """Register written partitions that Glue does not have yet (an existing one keeps its entry)."""
        if not partitions:
            return
        sd = table["StorageDescriptor"]
        keys = [k["Name"] for k in table["PartitionKeys"]]
        inputs = []
        for values in partitions:
            path = "/".join(f"{k}={v}" for k, v in zip(keys, values, strict=True))
            inputs.append(
                {"Values": values, "StorageDescriptor": {**sd, "Location": f"{sd['Location'].rstrip('/')}/{path}"}}
            )
        for start in range(0, len(inputs), 100):
            self.glue.batch_create_partition(
                DatabaseName=table["DatabaseName"],
                TableName=table["Name"],
                PartitionInputList=inputs[start : start + 100],
            )

    def register_view(self, database: str, name: str, sql: str, schema: pa.Schema, replace: bool) -> None:
        view = {
            "originalSql": sql,
            "catalog": "awsdatacatalog",
            "schema": database,
            "columns": [{"name": f.name, "type": athena_result_type(f.type)} for f in schema],
        }
        encoded = base64.b64encode(json.dumps(view).encode()).decode()
        table_input = {
            "Name": name,
            "TableType": "VIRTUAL_VIEW",
            "Parameters": {"presto_view": "true", "comment": "Presto View"},
            "ViewOriginalText": PRESTO_VIEW.format(encoded),
            "ViewExpandedText": "/* Presto View */",
            "StorageDescriptor": {
                "Columns": [{"Name": f.name, "Type": arrow_to_glue(f.type)} for f in schema],
                "SerdeInfo": {},
                "Location": "",
            },
        }
        if self.get_table(database, name) is not None:
            if not replace:
                raise AthenaQueryError("ALREADY_EXISTS", f"View '{database}.{name}' already exists")
            self.glue.update_table(DatabaseName=database, TableInput=table_input)
        else:
            self.glue.create_table(DatabaseName=database, TableInput=table_input)


def _moto_bucket(name: str):
    """moto's own bucket object when moto runs in this process (the stand-in): reads skip HTTP.

    Reading a partitioned table over HTTP costs a LIST and a GET per partition, which made a dbt model
    over the history tables take a minute on a loaded machine; moto's objects are the same bytes.
    """
    try:
        from moto.s3.models import s3_backends

        return s3_backends[ACCOUNT]["aws"].buckets.get(name)
    except Exception:  # moto not in this process, or its internals moved: fall back to the API
        return None


def view_sql(table: dict) -> str:
    """The Trino SQL of a Glue view written the way Athena writes views."""
    text = table.get("ViewOriginalText") or ""
    if text.startswith("/* Presto View: "):
        return json.loads(base64.b64decode(text[len("/* Presto View: ") : -3]))["originalSql"]
    return text
