"""One Athena statement, run: Trino SQL parsed by sqlglot, executed on DuckDB over what Glue catalogues.

Each query gets a fresh in-memory DuckDB. The Glue tables it names are read from S3 (catalog.py) and
registered under their database; Glue views are expanded by running their stored SQL through the same
translation, recursively. Where DuckDB and Athena engine v3 disagree, Athena wins: names Trino has no
function for fail with FUNCTION_NOT_FOUND before translation, integer division truncates
(``integer_division``), identifiers are folded to lower case, and DuckDB's errors are reported under
Athena's names (errors.py). DDL and DML are in ddl.py.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.optimizer.qualify import qualify
from sqlglot.schema import MappingSchema
from sqlglot.tokens import TokenType

from standins.aws.catalog import Catalog, Scan, view_sql
from standins.aws.errors import AthenaQueryError, from_duckdb
from standins.aws.functions import TRINO_FUNCTIONS

CATALOG = "awsdatacatalog"
_NOT_A_CALL_AFTER = {
    TokenType.INTO,
    TokenType.TABLE,
    TokenType.VIEW,
    TokenType.DOT,
    TokenType.JOIN,
    TokenType.FROM,
    TokenType.ALIAS,
    TokenType.SET,
    TokenType.WITH,
}


@dataclass
class Outcome:
    """What a statement produced: rows (SELECT and the like), or a count of rows written (DML)."""

    statement_type: str  # Athena's StatementType: DML, DDL or UTILITY
    rows: pa.Table | None = None
    update_count: int | None = None
    scan: Scan = field(default_factory=Scan)
    engine_ms: int = 0


def dialect(sql: str) -> str:
    """Trino for queries; Athena's Hive-DDL flavour (backtick identifiers) for DDL written that way."""
    return "athena" if "`" in sql else "trino"


def parse(sql: str) -> exp.Expression:
    """The one statement in ``sql`` (Athena runs one per query), parsed as Trino."""
    check_functions(sql)
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect(sql)) if s is not None]
    except (ParseError, TokenError) as exc:
        raise AthenaQueryError("SYNTAX_ERROR", str(exc).splitlines()[0]) from exc
    if len(statements) != 1:
        raise AthenaQueryError("INVALID_INPUT", "Only one sql statement is allowed.")
    return statements[0]


def check_functions(sql: str) -> None:
    """FUNCTION_NOT_FOUND for a call to a name Athena v3 does not have (checked on the SQL as written)."""
    try:
        tokens = sqlglot.Dialect.get_or_raise(dialect(sql)).tokenize(sql)
    except TokenError as exc:
        raise AthenaQueryError("SYNTAX_ERROR", str(exc).splitlines()[0]) from exc
    for i, tok in enumerate(tokens[:-1]):
        if tok.token_type != TokenType.VAR or tokens[i + 1].token_type != TokenType.L_PAREN:
            continue
        if i and tokens[i - 1].token_type in _NOT_A_CALL_AFTER:
            continue
        if tok.text.lower() not in TRINO_FUNCTIONS:
            raise AthenaQueryError(
                "FUNCTION_NOT_FOUND", f"line {tok.line}:{tok.col}: Function '{tok.text.lower()}' not registered"
            )


def lower_identifiers(tree: exp.Expression) -> exp.Expression:
    """Athena folds every identifier to lower case, quoted or not."""
    for ident in tree.find_all(exp.Identifier):
        ident.set("this", ident.name.lower())
    return tree


class Session:
    """A DuckDB for one statement, with the Glue relations it names registered by their Athena names."""

    def __init__(self, catalog: Catalog, database: str) -> None:
        self.catalog = catalog
        self.database = (database or "default").lower()
        self.con = duckdb.connect()
        self.con.execute("SET integer_division = true; SET TimeZone = 'UTC'")
        self.scan = Scan()
        self._registered: set[tuple[str, str]] = set()
        self._columns: set[str] = set()
        self._every_column = False

    def close(self) -> None:
        self.con.close()

    def relation(self, table: exp.Table, default_db: str) -> tuple[str, str]:
        """Qualify a table reference (``db.name`` in the default catalog) and make it queryable."""
        catalog = table.catalog.lower() if table.catalog else CATALOG
        if catalog != CATALOG:
            raise AthenaQueryError("CATALOG_NOT_FOUND", f"Catalog '{catalog}' does not exist")
        db, name = (table.db or default_db).lower(), table.name.lower()
        table.set("catalog", None)
        table.set("db", exp.to_identifier(db, quoted=True))
        table.set("this", exp.to_identifier(name, quoted=True))
        if (db, name) not in self._registered:
            self._register(db, name)
        return db, name

    def _register(self, db: str, name: str) -> None:
        glue = self.catalog.get_table(db, name)
        if glue is None:
            if not self.catalog.database_exists(db):
                raise AthenaQueryError("SCHEMA_NOT_FOUND", f"Schema '{db}' does not exist")
            raise AthenaQueryError("TABLE_NOT_FOUND", f"Table '{CATALOG}.{db}.{name}' does not exist")
        self._registered.add((db, name))
        self.con.execute(f'CREATE SCHEMA IF NOT EXISTS "{db}"')
        if glue.get("TableType") == "VIRTUAL_VIEW":
            body = self.translate(parse(view_sql(glue)), db)
            self.con.execute(f'CREATE VIEW "{db}"."{name}" AS {body}')
            return
        data = self.catalog.read_table(glue, None if self._every_column else self._columns, self.scan)
        handle = f"__glue_{len(self._registered)}"
        self.con.register(handle, data)
        self.con.execute(f'CREATE VIEW "{db}"."{name}" AS SELECT * FROM "{handle}"')

    def translate(self, tree: exp.Expression, default_db: str) -> str:
        """DuckDB SQL for a Trino query, registering every Glue relation it reads first.

        The columns it names are noted first so that bytes scanned count only those columns' chunks,
        as Athena's columnar reads do (``*`` anywhere counts every column).
        """
        tree = lower_identifiers(tree)
        ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
        self._columns |= {c.name.lower() for c in tree.find_all(exp.Column)}
        self._every_column |= any(True for _ in tree.find_all(exp.Star))
        for table in list(tree.find_all(exp.Table)):
            if not table.name or (not table.db and table.name.lower() in ctes):
                continue
            self.relation(table, default_db)
        return date_typed(tree, self.con).sql(dialect="duckdb")

    def query(self, tree: exp.Expression) -> pa.Table:
        """Run a query and return its rows as Arrow, failing with Athena's error name."""
        sql = self.translate(tree, self.database)
        try:
            relation = self.con.sql(sql)
            data = relation.to_arrow_table()
        except duckdb.Error as exc:
            raise from_duckdb(exc) from exc
        # DuckDB sums integers as HUGEINT; Trino's sum/count of integers is bigint (and overflows loudly).
        for i, kind in enumerate(relation.types):
            if str(kind) in {"HUGEINT", "UHUGEINT"}:
                try:
                    data = data.set_column(i, data.field(i).name, data.column(i).cast(pa.int64()))
                except pa.ArrowInvalid as exc:
                    raise AthenaQueryError("NUMERIC_VALUE_OUT_OF_RANGE", f"bigint overflow: {exc}") from exc
        return data


_DATE_FUNCS = (exp.DateTrunc, exp.TimestampTrunc, exp.DateAdd, exp.DateSub)


def _is_date(node: exp.Expression | None) -> bool:
    return node is not None and node.type is not None and node.type.this == exp.DataType.Type.DATE


def date_typed(tree: exp.Expression, con: duckdb.DuckDBPyConnection) -> exp.Expression:
    """Trino's ``date_trunc``/``date_add`` on a DATE return a DATE; DuckDB's return a TIMESTAMP: cast them back.

    Types come from sqlglot's annotator over the registered relations' DuckDB columns. Without this a
    mart column built with ``date_trunc('month', d)`` would be registered in Glue as ``timestamp`` where
    Athena registers ``date``. A query the annotator cannot follow is left as it is.
    """
    if not any(True for _ in tree.find_all(*_DATE_FUNCS, exp.GenerateSeries)):
        return tree
    mapping: dict = {}
    for table in tree.find_all(exp.Table):
        if table.db:
            columns = con.execute(f'DESCRIBE "{table.db}"."{table.name}"').fetchall()
            mapping.setdefault(table.db, {})[table.name] = {
                c[0]: c[1].replace("HUGEINT", "DECIMAL(38,0)") for c in columns
            }
    try:
        schema = MappingSchema(mapping, dialect="duckdb")
        typed = qualify(tree.copy(), schema=schema, dialect="trino", validate_qualify_columns=False)
        for _ in range(4):  # a cast changes the types downstream (a CTE's column), so annotate again
            typed = annotate_types(typed, schema=schema, dialect="trino")
            wrong = [
                n
                for n in typed.find_all(*_DATE_FUNCS)
                if n.this is not None and _is_date(n.this) and not isinstance(n.parent, exp.Cast)
            ]
            series = [
                n
                for n in typed.find_all(exp.GenerateSeries)
                if _is_date(n.args.get("start")) and not isinstance(n.parent, exp.Cast)
            ]
            if not wrong and not series:
                return typed
            for node in wrong:
                node.replace(exp.cast(node.copy(), exp.DataType.Type.DATE))
            for node in series:  # Trino's sequence of dates is array(date); DuckDB's is a list of timestamps
                node.replace(exp.cast(node.copy(), exp.DataType.build("DATE[]", dialect="duckdb")))
        return typed
    except Exception:  # sqlglot's optimizer does not follow every query; keep DuckDB's typing then
        return tree


def statement_kind(tree: exp.Expression) -> str:
    """Athena's StatementType for a parsed statement."""
    if isinstance(tree, exp.Query):
        return "DML"
    if isinstance(tree, exp.Insert):
        return "DML"
    if isinstance(tree, (exp.Describe, exp.Show)):
        return "UTILITY"
    return "DDL"


def execute(sql: str, database: str, catalog: Catalog, query_id: str) -> Outcome:
    """Run one statement the way Athena would, or raise AthenaQueryError."""
    from standins.aws import ddl

    started = time.monotonic()
    tree = parse(sql)
    session = Session(catalog, database)
    try:
        if isinstance(tree, exp.Query):
            outcome = Outcome("DML", rows=session.query(tree))
        else:
            outcome = ddl.run(tree, sql, session, query_id)
        outcome.scan = session.scan
    except duckdb.Error as exc:  # e.g. a view body that no longer binds
        raise from_duckdb(exc) from exc
    finally:
        session.close()
    outcome.engine_ms = int((time.monotonic() - started) * 1000)
    return outcome
