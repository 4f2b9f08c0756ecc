"""The Athena API (JSON protocol, ``X-Amz-Target: AmazonAthena.<Action>``) answered over the engine.

Queries run as Athena runs them: StartQueryExecution returns an id at once, the statement runs on a
worker thread (QUEUED → RUNNING → SUCCEEDED | FAILED | CANCELLED), and clients poll
GetQueryExecution. Catalog actions (ListDatabases, GetTableMetadata, ...) read the same Glue that moto
serves. Every action received is counted in ``calls``; one this stand-in does not answer is refused
with UnknownOperationException and counted too, so a test can say none was missed.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from botocore.exceptions import ClientError

from standins.aws import engine, results
from standins.aws.caller import ACCOUNT, Caller
from standins.aws.catalog import Catalog
from standins.aws.errors import SYSTEM, USER, AthenaQueryError

ENGINE_VERSION = {"SelectedEngineVersion": "AUTO", "EffectiveEngineVersion": "Athena engine version 3"}
# Athena's numeric AthenaError.ErrorType for the errors the engine raises (1000 = user error, generic).
_ERROR_TYPES = {
    "SYNTAX_ERROR": 1100,
    "TABLE_NOT_FOUND": 1200,
    "COLUMN_NOT_FOUND": 1201,
    "FUNCTION_NOT_FOUND": 1202,
    "SCHEMA_NOT_FOUND": 1203,
    "HIVE_BAD_DATA": 1300,
    "INVALID_CAST_ARGUMENT": 1101,
}


def _client_error(exc: ClientError, catalog: Catalog | None) -> tuple[str, int]:
    """(StateChangeReason, ErrorCategory) for an S3 or Glue call Athena made as the caller and was refused."""
    error = exc.response.get("Error", {})
    message = error.get("Message") or str(exc)
    if "AccessDenied" not in error.get("Code", ""):
        return f"HIVE_UNKNOWN_ERROR: {exc.operation_name}: {message}", SYSTEM
    if catalog is not None and catalog.last_s3 and catalog.last_s3[0] == exc.operation_name:
        operation, path = catalog.last_s3
        return f"PERMISSION_DENIED: Permission denied on S3 path: {path} ({operation}: {message})", USER
    return f"PERMISSION_DENIED: Insufficient permissions to execute the query. {message}", USER


class ApiError(Exception):
    """An API-level error (HTTP 400 with ``__type``), as opposed to a query that ran and failed."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class Athena:
    """State and actions of one stand-in: work groups and query executions, in memory."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.calls: Counter[str] = Counter()
        self.unanswered: Counter[str] = Counter()
        self.queries: dict[str, dict] = {}
        self.work_groups: dict[str, dict] = {"primary": {"Name": "primary", "State": "ENABLED", "Configuration": {}}}
        self._lock = threading.Lock()
        # STANDIN_ATHENA_QUERY_LOG=path appends every statement and its outcome (what dbt really sent).
        self.log_path = os.environ.get("STANDIN_ATHENA_QUERY_LOG")
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="athena-query")

    def handle(self, action: str, body: dict, caller: Caller) -> dict:
        self.calls[action] += 1
        method = getattr(self, f"_{action}", None)
        if method is None:
            self.unanswered[action] += 1
            raise ApiError("UnknownOperationException", f"the Athena stand-in does not answer {action}")
        return method(body, caller)

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.unanswered.clear()
            self.queries.clear()
            self.work_groups = {"primary": {"Name": "primary", "State": "ENABLED", "Configuration": {}}}

    def work_group_of(self, body: dict) -> str:
        """The work group a request acts in (IAM authorizes Athena actions on it): named, or its query's."""
        query = self.queries.get(body.get("QueryExecutionId", ""))
        return body.get("WorkGroup") or (query and query["execution"]["WorkGroup"]) or "primary"

    # --- work groups and catalogs ---------------------------------------------------------------
    def _work_group(self, name: str) -> dict:
        group = self.work_groups.get(name or "primary")
        if group is None:
            raise ApiError("InvalidRequestException", f"WorkGroup {name} is not found.")
        return group

    def _GetWorkGroup(self, body: dict, caller: Caller) -> dict:
        group = self._work_group(body["WorkGroup"])
        config = {
            "EnforceWorkGroupConfiguration": False,
            "PublishCloudWatchMetricsEnabled": False,
            "RequesterPaysEnabled": False,
            "EngineVersion": ENGINE_VERSION,
            **group["Configuration"],
        }
        return {"WorkGroup": {**group, "Configuration": config, "CreationTime": time.time()}}

    def _CreateWorkGroup(self, body: dict, caller: Caller) -> dict:
        if body["Name"] in self.work_groups:
            raise ApiError("InvalidRequestException", "WorkGroup is already created")
        self.work_groups[body["Name"]] = {
            "Name": body["Name"],
            "State": "ENABLED",
            "Configuration": body.get("Configuration", {}),
            "Description": body.get("Description", ""),
        }
        return {}

    def _ListWorkGroups(self, body: dict, caller: Caller) -> dict:
        return {
            "WorkGroups": [
                {"Name": n, "State": g["State"], "EngineVersion": ENGINE_VERSION} for n, g in self.work_groups.items()
            ]
        }

    def _ListDataCatalogs(self, body: dict, caller: Caller) -> dict:
        return {"DataCatalogsSummary": [{"CatalogName": "AwsDataCatalog", "Type": "GLUE"}]}

    def _GetDataCatalog(self, body: dict, caller: Caller) -> dict:
        if body["Name"].lower() != engine.CATALOG:
            raise ApiError("InvalidRequestException", f"Catalog {body['Name']} was not found")
        return {"DataCatalog": {"Name": "AwsDataCatalog", "Type": "GLUE", "Parameters": {"catalog-id": ACCOUNT}}}

    def _ListDatabases(self, body: dict, caller: Caller) -> dict:
        glue = Catalog(self.endpoint, caller).glue
        names = [d["Name"] for page in glue.get_paginator("get_databases").paginate() for d in page["DatabaseList"]]
        return {"DatabaseList": [{"Name": n} for n in names]}

    def _GetDatabase(self, body: dict, caller: Caller) -> dict:
        catalog = Catalog(self.endpoint, caller)
        if not catalog.database_exists(body["DatabaseName"]):
            raise ApiError("MetadataException", f"Database {body['DatabaseName']} not found.")
        return {"Database": {"Name": body["DatabaseName"].lower()}}

    def _table_metadata(self, table: dict) -> dict:
        columns = [{"Name": c["Name"], "Type": c["Type"]} for c in table["StorageDescriptor"].get("Columns", [])]
        return {
            "Name": table["Name"],
            "TableType": table.get("TableType", "EXTERNAL_TABLE"),
            "Columns": columns,
            "PartitionKeys": [{"Name": k["Name"], "Type": k["Type"]} for k in table.get("PartitionKeys", [])],
            "Parameters": table.get("Parameters", {}),
        }

    def _GetTableMetadata(self, body: dict, caller: Caller) -> dict:
        table = Catalog(self.endpoint, caller).get_table(body["DatabaseName"], body["TableName"])
        if table is None:
            raise ApiError("MetadataException", f"Table {body['TableName']} not found.")
        return {"TableMetadata": self._table_metadata(table)}

    def _ListTableMetadata(self, body: dict, caller: Caller) -> dict:
        glue = Catalog(self.endpoint, caller).glue
        pages = glue.get_paginator("get_tables").paginate(DatabaseName=body["DatabaseName"].lower())
        return {"TableMetadataList": [self._table_metadata(t) for page in pages for t in page["TableList"]]}

    # --- queries ---------------------------------------------------------------------------------
    def _StartQueryExecution(self, body: dict, caller: Caller) -> dict:
        group = self._work_group(body.get("WorkGroup", "primary"))
        output = (body.get("ResultConfiguration") or {}).get("OutputLocation") or (
            group["Configuration"].get("ResultConfiguration") or {}
        ).get("OutputLocation")
        if not output:
            raise ApiError(
                "InvalidRequestException",
                "No output location provided. An output location is required "
                "either through the Workgroup result configuration setting or as an API input.",
            )
        context = body.get("QueryExecutionContext") or {}
        query_id = str(uuid.uuid4())
        record = {
            "QueryExecutionId": query_id,
            "Query": body["QueryString"],
            "StatementType": "DML",
            "ResultConfiguration": {"OutputLocation": f"{output.rstrip('/')}/{query_id}.csv"},
            "QueryExecutionContext": context,
            "WorkGroup": group["Name"],
            "EngineVersion": ENGINE_VERSION,
            "Status": {"State": "QUEUED", "SubmissionDateTime": time.time()},
            "Statistics": {"DataScannedInBytes": 0, "EngineExecutionTimeInMillis": 0},
        }
        with self._lock:
            self.queries[query_id] = {"execution": record, "rows": None, "labels": None, "update_count": None}
        self._pool.submit(self._run, query_id, body["QueryString"], context.get("Database", "default"), output, caller)
        return {"QueryExecutionId": query_id}

    def _run(self, query_id: str, sql: str, database: str, output: str, caller: Caller) -> None:
        entry = self.queries[query_id]
        record = entry["execution"]
        if record["Status"]["State"] == "CANCELLED":
            return
        record["Status"]["State"] = "RUNNING"
        started = time.monotonic()
        catalog = None
        try:
            catalog = Catalog(self.endpoint, caller)
            outcome = engine.execute(sql, database, catalog, query_id)
            location = results.write_output(catalog.s3, output, query_id, outcome.rows, outcome.statement_type)
            record["ResultConfiguration"]["OutputLocation"] = location
            record["StatementType"] = outcome.statement_type
            record["Statistics"].update(
                DataScannedInBytes=outcome.scan.bytes, EngineExecutionTimeInMillis=outcome.engine_ms
            )
            if outcome.rows is not None:
                entry["rows"] = results.string_rows(outcome.rows)
                entry["info"] = results.column_info(outcome.rows.schema)
                entry["labels"] = outcome.rows.column_names if outcome.statement_type == "DML" else None
            entry["update_count"] = outcome.update_count
            state, reason, error = "SUCCEEDED", None, None
        except AthenaQueryError as exc:
            state, reason = "FAILED", str(exc)
            error = {
                "ErrorCategory": exc.category,
                "ErrorType": _ERROR_TYPES.get(exc.error_type, 1000 if exc.category == USER else 401),
                "Retryable": False,
                "ErrorMessage": str(exc),
            }
        except ClientError as exc:
            # What Athena did as the caller was refused: Athena names the permission and the path.
            reason, category = _client_error(exc, catalog)
            state = "FAILED"
            error = {"ErrorCategory": category, "ErrorType": 1000, "Retryable": False, "ErrorMessage": reason}
        except Exception as exc:  # a stand-in bug still reaches the client as Athena would report an internal error
            state, reason = "FAILED", f"GENERIC_INTERNAL_ERROR: {type(exc).__name__}: {exc}"
            error = {"ErrorCategory": 1, "ErrorType": 401, "Retryable": False, "ErrorMessage": reason}
        elapsed = int((time.monotonic() - started) * 1000)
        record["Statistics"].update(
            TotalExecutionTimeInMillis=elapsed, QueryQueueTimeInMillis=0, ServiceProcessingTimeInMillis=0
        )
        if record["Status"]["State"] == "CANCELLED":
            return
        status = {
            "State": state,
            "SubmissionDateTime": record["Status"]["SubmissionDateTime"],
            "CompletionDateTime": time.time(),
        }
        if reason:
            status["StateChangeReason"] = reason
            status["AthenaError"] = error
        record["Status"] = status
        if self.log_path:
            with self._lock, open(self.log_path, "a") as log:
                log.write(
                    f"-- {query_id} {state} {record['Statistics']['DataScannedInBytes']} B {elapsed} ms"
                    f"{' ' + reason if reason else ''}\n{sql.strip()}\n;\n"
                )

    def _entry(self, query_id: str) -> dict:
        entry = self.queries.get(query_id)
        if entry is None:
            raise ApiError("InvalidRequestException", f"QueryExecution {query_id} was not found")
        return entry

    def _GetQueryExecution(self, body: dict, caller: Caller) -> dict:
        return {"QueryExecution": self._entry(body["QueryExecutionId"])["execution"]}

    def _BatchGetQueryExecution(self, body: dict, caller: Caller) -> dict:
        found = [self.queries[i]["execution"] for i in body["QueryExecutionIds"] if i in self.queries]
        missing = [
            {"QueryExecutionId": i, "ErrorMessage": "not found"}
            for i in body["QueryExecutionIds"]
            if i not in self.queries
        ]
        return {"QueryExecutions": found, "UnprocessedQueryExecutionIds": missing}

    def _ListQueryExecutions(self, body: dict, caller: Caller) -> dict:
        group = body.get("WorkGroup")
        ids = [i for i, e in self.queries.items() if group is None or e["execution"]["WorkGroup"] == group]
        start = int(body.get("NextToken") or 0)
        size = min(int(body.get("MaxResults") or 50), 50)
        ids = list(reversed(ids))  # newest first, as Athena lists them
        out = {"QueryExecutionIds": ids[start : start + size]}
        if start + size < len(ids):
            out["NextToken"] = str(start + size)
        return out

    def _StopQueryExecution(self, body: dict, caller: Caller) -> dict:
        record = self._entry(body["QueryExecutionId"])["execution"]
        if record["Status"]["State"] in {"QUEUED", "RUNNING"}:
            record["Status"] = {
                **record["Status"],
                "State": "CANCELLED",
                "CompletionDateTime": time.time(),
                "StateChangeReason": "Query cancelled by user",
            }
        return {}

    def _GetQueryResults(self, body: dict, caller: Caller) -> dict:
        entry = self._entry(body["QueryExecutionId"])
        state = entry["execution"]["Status"]["State"]
        if state in {"QUEUED", "RUNNING"}:
            raise ApiError("InvalidRequestException", f"Query has not yet finished. Current state: {state}")
        if state != "SUCCEEDED":
            raise ApiError("InvalidRequestException", f"Query did not finish successfully. Final query state: {state}")
        rows, token = results.page(entry["rows"] or [], entry["labels"], body.get("NextToken"), body.get("MaxResults"))
        out = {
            "ResultSet": {"Rows": rows, "ResultSetMetadata": {"ColumnInfo": entry.get("info", [])}},
            "UpdateCount": entry["update_count"] or 0,
        }
        if token:
            out["NextToken"] = token
        return out

    def _GetQueryRuntimeStatistics(self, body: dict, caller: Caller) -> dict:
        stats = self._entry(body["QueryExecutionId"])["execution"]["Statistics"]
        return {
            "QueryRuntimeStatistics": {
                "Timeline": {"EngineExecutionTimeInMillis": stats["EngineExecutionTimeInMillis"]},
                "Rows": {},
            }
        }
