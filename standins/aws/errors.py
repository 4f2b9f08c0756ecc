"""Athena's failure vocabulary: a query that fails ends FAILED with Athena's error name, never a traceback.

Athena reports a failed query through GetQueryExecution: ``Status.State == "FAILED"``, a
``StateChangeReason`` that starts with the error name (``TABLE_NOT_FOUND: line 1:15: ...``) and
``AthenaError.ErrorCategory`` (1 system, 2 user, 3 other). Every engine failure is turned into one of
these here, so the person reading dbt's or the report's log sees what real Athena would have said.
"""

from __future__ import annotations

import re

# Athena's ErrorCategory: 2 = the query's fault (USER_ERROR), 1 = the service's.
USER, SYSTEM = 2, 1


class AthenaQueryError(Exception):
    """A query failure with Athena's error name (``error_type``) and message."""

    def __init__(self, error_type: str, message: str, category: int = USER) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message
        self.category = category


# DuckDB's messages for what Trino reports under these names (first match wins).
_DUCKDB_ERRORS = [
    (
        re.compile(
            r"Referenced column \"?([^\"\s]+)\"? not found|column \"?([^\"\s]+)\"? (?:not found|does not exist)", re.I
        ),
        "COLUMN_NOT_FOUND",
        "Column '{0}' cannot be resolved",
    ),
    (re.compile(r"Table with name ([^\s]+) does not exist", re.I), "TABLE_NOT_FOUND", "Table '{0}' does not exist"),
    (re.compile(r"Could not convert|Conversion Error|Could not cast", re.I), "INVALID_CAST_ARGUMENT", "{msg}"),
    (re.compile(r"Division by zero|divide by zero", re.I), "DIVISION_BY_ZERO", "Division by zero"),
    (re.compile(r"must appear in the GROUP BY clause|GROUP BY clause", re.I), "EXPRESSION_NOT_AGGREGATE", "{msg}"),
    (
        re.compile(r"Scalar Function with name (\w+) does not exist|Function with name (\w+) does not exist", re.I),
        "FUNCTION_NOT_FOUND",
        "Function '{0}' not registered",
    ),
    (re.compile(r"Parser Error|syntax error", re.I), "SYNTAX_ERROR", "{msg}"),
    (re.compile(r"Binder Error|Catalog Error", re.I), "SEMANTIC_ERROR", "{msg}"),
    (re.compile(r"Out of Range|overflow", re.I), "NUMERIC_VALUE_OUT_OF_RANGE", "{msg}"),
]


def from_duckdb(exc: Exception) -> AthenaQueryError:
    """The Athena error a DuckDB failure stands for (GENERIC_INTERNAL_ERROR when none matches)."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    for pattern, name, template in _DUCKDB_ERRORS:
        match = pattern.search(text)
        if match:
            groups = [g for g in match.groups() if g] or [""]
            return AthenaQueryError(name, template.format(groups[0], msg=first))
    return AthenaQueryError("GENERIC_INTERNAL_ERROR", first, SYSTEM)
