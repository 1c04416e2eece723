"""Every DuckDB connection of the pipeline is opened here, with the identifier and table helpers.

The kinds of connection, and who uses them:

* :func:`in_memory`: a working connection in memory, with the pipeline's limits
  (:mod:`pipelines.duck`) when given settings: ingestion, the intake checks and the map preview
  read the raw lake through it (``read_parquet`` views over lake partitions), the generator
  rolls up events in it.
* :func:`open_connection` / :func:`connect`: the working warehouse file, read-write (dbt's
  neighbours, the night table) or read-only (the calibration, backtest and policy sandboxes).
* :func:`connect_read_only`: the working warehouse read-only, with an error that says what to run
  when it is missing (the gate's suites scaffold, ad-hoc reads).
* :func:`attach_read_only`: an in-memory connection with the warehouse file attached read-only
  (:func:`pipelines.build.marts.open_marts`, which also builds the Spark-attached variant: views over
  Spark's Parquet files in an :func:`in_memory` connection).
* :func:`open_published_file`: a published release's file, read-only with external access off
  (:func:`pipelines.release.open_published`).

DuckDB allows one read-write process per file. The DAG serialises the tasks that write (a
one-slot pool); opening a locked file waits (bounded, :data:`LOCK_WAIT_SECONDS`) so that a CLI
call next to a running night waits instead of failing at once, then fails with
:class:`WarehouseLocked` (transient: retried), saying who holds the lock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pipelines.errors import DataProblem, Transient

if TYPE_CHECKING:
    import duckdb

    from pipelines.settings import Settings

log = logging.getLogger(__name__)

LOCK_WAIT_SECONDS = 120.0
#: Schema of the marts in the working warehouse and in a published release.
MARTS_SCHEMA = "marts"
#: DuckDB settings for every connection to a published file: read-only, no file system or
#: network access (no read_csv, COPY, ATTACH, extension installs), and locked so SQL cannot undo it.
PUBLISHED_CONFIG: dict[str, Any] = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "lock_configuration": True,
}

T = TypeVar("T")


class WarehouseLocked(Transient):
    """Another process holds the warehouse file open for writing."""


class WarehouseUnavailable(DataProblem):
    """The working warehouse cannot be opened read-only (missing, or not built for this night)."""


# --------------------------------------------------------------------------- identifiers and tables


def quote_ident(name: str) -> str:
    """Quote an identifier for DuckDB SQL."""
    return '"' + name.replace('"', '""') + '"'


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    """Whether ``schema.table`` (a table or a view) exists in the connection's default catalog."""
    row = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? "
        "and table_name = ? and table_catalog = current_database()",
        [schema, table],
    ).fetchone()
    return bool(row and row[0])


def table_columns(
    con: duckdb.DuckDBPyConnection, schema: str, table: str, catalog: str | None = None
) -> list[tuple[str, str]]:
    """``(column_name, data_type)`` in table order; ``catalog`` for attached databases."""
    sql = (
        "select column_name, data_type from duckdb_columns() where schema_name = ? and table_name = ?"
        + (" and database_name = ?" if catalog else " and database_name = current_database()")
        + " order by column_index"
    )
    params = [schema, table, catalog] if catalog else [schema, table]
    return [(r[0], r[1]) for r in con.execute(sql, params).fetchall()]


# --------------------------------------------------------------------------- connections


def _session(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    con.execute("set TimeZone = 'UTC'")
    con.execute("set enable_progress_bar = false")
    return con


def in_memory(settings: Settings | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory connection, UTC session time zone; with ``settings``, the pipeline's memory,
    thread and spill limits (:func:`pipelines.duck.config`)."""
    import duckdb

    if settings is None:
        return _session(duckdb.connect())
    from pipelines import duck

    duck.spill_dir(settings).mkdir(parents=True, exist_ok=True)
    return _session(duckdb.connect(":memory:", config=duck.config(settings)))


def _waiting_for_lock(path: Path, attempt: Callable[[], T], wait_seconds: float | None,
                      on_other_error: Callable[[Exception], Exception] | None = None) -> T:
    """``attempt()`` until it stops meeting DuckDB's file lock, for up to ``wait_seconds``
    (default :data:`LOCK_WAIT_SECONDS`), then :class:`WarehouseLocked`. Another IO error is
    re-raised, or turned into ``on_other_error(exc)``."""
    import duckdb

    deadline = time.monotonic() + (LOCK_WAIT_SECONDS if wait_seconds is None else wait_seconds)
    delay = 0.2
    while True:
        try:
            return attempt()
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():  # DuckDB's "Could not set lock on file"
                if on_other_error is None:
                    raise
                raise on_other_error(exc) from exc
            if time.monotonic() >= deadline:
                raise WarehouseLocked(
                    f"The warehouse {path} is locked by another process: {exc}. "
                    "Only one process may write it at a time; wait for the running task "
                    "(Airflow pool 'segment_mart_warehouse') or stop the other process."
                ) from exc
            log.info("warehouse %s is locked; waiting %.1fs", path, delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def open_connection(path: Path, read_only: bool, wait_seconds: float | None = None,
                    settings: Settings | None = None) -> duckdb.DuckDBPyConnection:
    """Open the file, waiting up to ``wait_seconds`` while another process holds its lock; with
    ``settings``, under the pipeline's memory, thread and spill limits (:func:`pipelines.duck.config`)."""
    import duckdb

    config: dict = {}
    if settings is not None:
        from pipelines import duck

        duck.spill_dir(settings).mkdir(parents=True, exist_ok=True)
        config = duck.config(settings)
    return _waiting_for_lock(
        path, lambda: _session(duckdb.connect(str(path), read_only=read_only, config=config)), wait_seconds)


@contextmanager
def connect(
    path: Path, *, read_only: bool = False, wait_seconds: float | None = None, settings: Settings | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse (creating its folder for writers) and always close it; ``settings``
    applies the pipeline's limits (:func:`open_connection`)."""
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.exists():
        raise FileNotFoundError(f"The warehouse {path} does not exist yet: run `segment-mart ingest` first.")
    con = open_connection(path, read_only, wait_seconds, settings)
    try:
        yield con
    finally:
        con.close()


def _missing(path: Path) -> WarehouseUnavailable:
    return WarehouseUnavailable(
        f"working warehouse {path} does not exist: run ingestion and dbt for this date first "
        "(or point SEGMENT_MART_WAREHOUSE_PATH at the right file)"
    )


def connect_read_only(path: Path) -> duckdb.DuckDBPyConnection:
    """Open ``path`` read-only, with a clear error when it is missing or locked by a writer."""
    import duckdb

    path = Path(path)
    if not path.exists():
        raise _missing(path)
    # A writer's lock is waited for (bounded) and, if it outlasts the wait, raised as
    # WarehouseLocked: a transient error the DAG retries, not a failed data check.
    try:
        return open_connection(path, read_only=True)
    except duckdb.Error as exc:
        raise WarehouseUnavailable(f"cannot open working warehouse {path} read-only: {exc}") from exc


def attach_read_only(path: Path, catalog: str, *, wait_seconds: float | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory connection (writable: a publish attaches its new release beside) with the
    warehouse file attached read-only as ``catalog`` and made the default catalog."""
    path = Path(path)
    if not path.exists():
        raise _missing(path)
    con = in_memory()
    quoted = str(path.absolute()).replace("'", "''")

    def unavailable(exc: Exception) -> Exception:
        return WarehouseUnavailable(f"cannot open working warehouse {path} read-only: {exc}")

    try:
        _waiting_for_lock(path, lambda: con.execute(f"attach '{quoted}' as {catalog} (read_only)"), wait_seconds,
                          on_other_error=unavailable)
    except BaseException:
        con.close()
        raise
    con.execute(f"use {catalog}")
    return con


def open_published_file(path: Path) -> duckdb.DuckDBPyConnection:
    """A published release's DuckDB file, read-only, with :data:`PUBLISHED_CONFIG` (no external
    access, configuration locked: no session setting can be changed after this)."""
    import duckdb

    return duckdb.connect(str(path), read_only=True, config=dict(PUBLISHED_CONFIG))
