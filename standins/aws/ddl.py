"""DDL and DML as Athena runs them for dbt-athena: CTAS, views, INSERT INTO, DROP, schemas.

- ``CREATE TABLE ... WITH (format, external_location, partitioned_by) AS SELECT`` writes Parquet under the
  location (one directory per partition, ``key=value``) and registers the table and its partitions in
  Glue; it fails when the location already holds data, as Athena does (HIVE_PATH_ALREADY_EXISTS).
- ``CREATE [OR REPLACE] VIEW`` checks the query, then stores a Glue view in the Presto view format.
- ``INSERT INTO`` adds files under the table's (or partition's) location and any new partitions.
- ``DROP TABLE``/``DROP VIEW`` remove the catalog entry only: Athena never deletes the data.
"""

from __future__ import annotations

import re

import pyarrow as pa
from sqlglot import exp

from standins.aws.catalog import split_s3
from standins.aws.engine import CATALOG, Outcome, Session, lower_identifiers
from standins.aws.errors import AthenaQueryError
from standins.aws.types import arrow_for_storage, glue_to_arrow


def run(tree: exp.Expression, sql: str, session: Session, query_id: str) -> Outcome:
    """Dispatch one non-query statement."""
    tree = lower_identifiers(tree)
    if isinstance(tree, exp.Create) and tree.kind == "TABLE" and isinstance(tree.expression, exp.Query):
        return _ctas(tree, session, query_id)
    if isinstance(tree, exp.Create) and tree.kind == "VIEW":
        return _view(tree, session)
    if isinstance(tree, exp.Create) and tree.kind in {"SCHEMA", "DATABASE"}:
        return _create_schema(tree, session)
    if isinstance(tree, exp.Insert):
        return _insert(tree, session, query_id)
    if isinstance(tree, exp.Drop) and tree.kind in {"TABLE", "VIEW"}:
        return _drop(tree, session)
    if isinstance(tree, exp.Alter) and _TBLPROPERTIES.search(sql):
        return _set_properties(tree, sql, session)
    kind = tree.key.upper() if not isinstance(tree, exp.Command) else str(tree.this).upper()
    raise AthenaQueryError("NOT_SUPPORTED", f"the Athena stand-in does not run {kind} statements")


_TBLPROPERTIES = re.compile(r"\bset\s+tblproperties\s*\((.*)\)", re.I | re.S)
_PAIR = re.compile(r"'([^']*)'\s*=\s*'([^']*)'")


def _set_properties(tree: exp.Alter, sql: str, session: Session) -> Outcome:
    """``ALTER TABLE t SET TBLPROPERTIES ('k' = 'v', ...)``: merged into the Glue table's parameters."""
    db, name = _name(tree.this, session)
    table = session.catalog.get_table(db, name)
    if table is None:
        raise AthenaQueryError("TABLE_NOT_FOUND", f"Table '{CATALOG}.{db}.{name}' does not exist")
    params = dict(_PAIR.findall(_TBLPROPERTIES.search(sql).group(1)))
    keep = (
        "Name",
        "Description",
        "Owner",
        "Retention",
        "StorageDescriptor",
        "PartitionKeys",
        "TableType",
        "ViewOriginalText",
        "ViewExpandedText",
    )
    table_input = {k: table[k] for k in keep if k in table}
    table_input["Parameters"] = {**table.get("Parameters", {}), **params}
    session.catalog.glue.update_table(DatabaseName=db, TableInput=table_input)
    return Outcome("DDL")


def _name(table: exp.Table, session: Session) -> tuple[str, str]:
    if table.catalog and table.catalog.lower() != CATALOG:
        raise AthenaQueryError("CATALOG_NOT_FOUND", f"Catalog '{table.catalog}' does not exist")
    return (table.db or session.database).lower(), table.name.lower()


def _properties(tree: exp.Create) -> dict:
    found: dict = {}
    props = tree.args.get("properties")
    for prop in props.expressions if props else []:
        if isinstance(prop, exp.PartitionedByProperty):
            found["partitioned_by"] = [e.name.lower() for e in prop.this.expressions]
        elif isinstance(prop, exp.FileFormatProperty):
            found["format"] = prop.name.lower()
        elif isinstance(prop, exp.Property):
            found[prop.name.lower()] = prop.args["value"].name if prop.args.get("value") is not None else None
    return found


def _storable(data: pa.Table) -> pa.Table:
    schema = pa.schema([(f.name.lower(), arrow_for_storage(f.type)) for f in data.schema])
    return data.rename_columns(schema.names).cast(schema)


def _ctas(tree: exp.Create, session: Session, query_id: str) -> Outcome:
    db, name = _name(tree.this, session)
    props = _properties(tree)
    if props.get("table_type", "hive").lower() != "hive":
        raise AthenaQueryError(
            "NOT_SUPPORTED", f"the Athena stand-in writes Hive tables only, not {props['table_type']}"
        )
    if props.get("format", "parquet") != "parquet":
        raise AthenaQueryError("NOT_SUPPORTED", f"the Athena stand-in writes Parquet only, not {props['format']}")
    if session.catalog.get_table(db, name) is not None:
        if tree.args.get("exists"):
            return Outcome("DDL", update_count=0)
        raise AthenaQueryError("ALREADY_EXISTS", f"Table '{CATALOG}.{db}.{name}' already exists")
    if not session.catalog.database_exists(db):
        raise AthenaQueryError("SCHEMA_NOT_FOUND", f"Schema '{db}' does not exist")
    location = props.get("external_location")
    if not location:
        raise AthenaQueryError("NOT_SUPPORTED", "the Athena stand-in needs external_location on CTAS")
    keys = props.get("partitioned_by") or []
    data = _storable(session.query(tree.expression))
    missing = [k for k in keys if k not in data.column_names]
    if missing:
        raise AthenaQueryError("COLUMN_NOT_FOUND", f"Partition column(s) {missing} not present in the query")
    if keys and data.column_names[-len(keys) :] != keys:
        raise AthenaQueryError("INVALID_TABLE_PROPERTY", "Partition columns must be the last columns in the table")
    session.catalog.ensure_empty(location)
    partitions = session.catalog.write_files(location, data, keys, query_id)
    session.catalog.register_table(db, name, data.schema, keys, location)
    if keys:
        session.catalog.add_partitions(session.catalog.get_table(db, name), partitions)
    return Outcome("DDL", update_count=data.num_rows)


def _view(tree: exp.Create, session: Session) -> Outcome:
    db, name = _name(tree.this, session)
    body = tree.expression
    original = body.sql(dialect="trino")
    schema = session.query(body.copy().limit(0) if isinstance(body, exp.Select) else body.copy()).schema
    session.catalog.register_view(db, name, original, schema, replace=bool(tree.args.get("replace")))
    return Outcome("DDL")


def _create_schema(tree: exp.Create, session: Session) -> Outcome:
    name = (tree.this.db or tree.this.name).lower()
    if session.catalog.database_exists(name):
        if tree.args.get("exists"):
            return Outcome("DDL")
        raise AthenaQueryError("ALREADY_EXISTS", f"Schema '{name}' already exists")
    session.catalog.glue.create_database(DatabaseInput={"Name": name})
    return Outcome("DDL")


def _insert(tree: exp.Insert, session: Session, query_id: str) -> Outcome:
    target = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
    listed = [c.name.lower() for c in tree.this.expressions] if isinstance(tree.this, exp.Schema) else None
    db, name = _name(target, session)
    table = session.catalog.get_table(db, name)
    if table is None:
        raise AthenaQueryError("TABLE_NOT_FOUND", f"Table '{CATALOG}.{db}.{name}' does not exist")
    if table.get("TableType") == "VIRTUAL_VIEW":
        raise AthenaQueryError("NOT_SUPPORTED", f"Inserting into views is not supported: {db}.{name}")
    query = tree.expression.this if isinstance(tree.expression, exp.Subquery) else tree.expression
    data = session.query(query)
    columns = [(c["Name"].lower(), c["Type"]) for c in table["StorageDescriptor"]["Columns"]]
    keys = [(k["Name"].lower(), k["Type"]) for k in table.get("PartitionKeys", [])]
    names = listed or [n for n, _ in columns + keys]
    if len(names) != data.num_columns:
        raise AthenaQueryError("SYNTAX_ERROR", f"Insert query has {data.num_columns} columns, target has {len(names)}")
    unknown = [n for n in names if n not in {c for c, _ in columns + keys}]
    if unknown:
        raise AthenaQueryError("COLUMN_NOT_FOUND", f"Insert column name does not exist in target table: {unknown[0]}")
    by_name = dict(zip(names, data.columns, strict=True))
    arrays = []
    for col, gtype in columns + keys:
        target_type = glue_to_arrow(gtype)
        if col in by_name:
            try:
                arrays.append(by_name[col].cast(target_type))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise AthenaQueryError(
                    "TYPE_MISMATCH", f"Insert query column {col} cannot be cast to {gtype}: {exc}"
                ) from exc
        else:
            arrays.append(pa.nulls(data.num_rows, target_type))
    rows = pa.table(arrays, names=[c for c, _ in columns + keys])
    location = table["StorageDescriptor"]["Location"]
    split_s3(location)
    partitions = session.catalog.write_files(location, rows, [k for k, _ in keys], query_id)
    if keys:
        existing = _partition_values(session, db, name)
        session.catalog.add_partitions(table, [p for p in partitions if tuple(p) not in existing])
    return Outcome("DML", update_count=rows.num_rows)


def _partition_values(session: Session, db: str, name: str) -> set[tuple[str, ...]]:
    pages = session.catalog.glue.get_paginator("get_partitions").paginate(DatabaseName=db, TableName=name)
    return {tuple(p["Values"]) for page in pages for p in page["Partitions"]}


def _drop(tree: exp.Drop, session: Session) -> Outcome:
    tables = tree.args.get("tables") or [tree.this]
    if len(tables) != 1:
        raise AthenaQueryError("SYNTAX_ERROR", "DROP takes one table")
    db, name = _name(tables[0], session)
    table = session.catalog.get_table(db, name)
    if table is None:
        if tree.args.get("exists"):
            return Outcome("DDL")
        raise AthenaQueryError("TABLE_NOT_FOUND", f"Table '{CATALOG}.{db}.{name}' does not exist")
    is_view = table.get("TableType") == "VIRTUAL_VIEW"
    if (tree.kind == "VIEW") != is_view:
        what = "a view" if is_view else "a table"
        raise AthenaQueryError(
            "SEMANTIC_ERROR", f"'{CATALOG}.{db}.{name}' is {what}; use DROP {'VIEW' if is_view else 'TABLE'}"
        )
    session.catalog.glue.delete_table(DatabaseName=db, Name=name)
    return Outcome("DDL")
