"""Read-only access to the working warehouse for the gate and the publish.

DuckDB allows one read-write process per file; the gate and the publish only ever read the
working warehouse, through a read-only connection, and only while no writer holds it (the DAG
serialises writers in a one-slot pool). A busy or missing file gives an error that says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb


class WarehouseUnavailable(RuntimeError):
    """The working warehouse cannot be opened read-only (missing, or a writer holds the lock)."""


def connect_read_only(path: Path) -> duckdb.DuckDBPyConnection:
    """Open ``path`` read-only, with a clear error when it is missing or locked by a writer."""
    import duckdb

    path = Path(path)
    if not path.exists():
        raise WarehouseUnavailable(
            f"working warehouse {path} does not exist: run ingestion and dbt for this date first "
            "(or point SEGMENT_MART_WAREHOUSE_PATH at the right file)"
        )
    from pipelines.warehouse import open_connection

    # A writer's lock is waited for (bounded) and, if it outlasts the wait, raised as
    # WarehouseLocked: a transient error the DAG retries, not a failed data check.
    try:
        return open_connection(path, read_only=True)
    except duckdb.Error as exc:
        raise WarehouseUnavailable(f"cannot open working warehouse {path} read-only: {exc}") from exc


def quote_ident(name: str) -> str:
    """Quote an identifier for DuckDB SQL."""
    return '"' + name.replace('"', '""') + '"'


def list_tables(con: duckdb.DuckDBPyConnection, schema: str, catalog: str | None = None) -> list[str]:
    """Tables and views of ``schema``, sorted; ``catalog`` for attached databases."""
    sql = (
        "select table_name from information_schema.tables where table_schema = ?"
        + (" and table_catalog = ?" if catalog else " and table_catalog = current_database()")
        + " order by table_name"
    )
    params = [schema, catalog] if catalog else [schema]
    return [r[0] for r in con.execute(sql, params).fetchall()]


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    row = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? "
        "and table_name = ? and table_catalog = current_database()",
        [schema, table],
    ).fetchone()
    return bool(row and row[0])


def table_columns(
    con: duckdb.DuckDBPyConnection, schema: str, table: str, catalog: str | None = None
) -> list[tuple[str, str]]:
    """``(column_name, data_type)`` in table order."""
    sql = (
        "select column_name, data_type from duckdb_columns() where schema_name = ? and table_name = ?"
        + (" and database_name = ?" if catalog else " and database_name = current_database()")
        + " order by column_index"
    )
    params = [schema, table, catalog] if catalog else [schema, table]
    return [(r[0], r[1]) for r in con.execute(sql, params).fetchall()]
