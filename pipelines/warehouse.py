"""Connections to the working DuckDB warehouse.

DuckDB allows one read-write process per file. The DAG serialises the tasks that
write (a one-slot pool); this module adds a bounded wait when the file is locked so
that a CLI call next to a running night waits instead of failing at once, and fails
with a message that says who holds the lock when the wait runs out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

log = logging.getLogger(__name__)

LOCK_WAIT_SECONDS = 120.0


class WarehouseLocked(RuntimeError):
    """Another process holds the warehouse file open for writing."""


def open_connection(path: Path, read_only: bool, wait_seconds: float | None = None) -> duckdb.DuckDBPyConnection:
    """Open the file, waiting up to ``wait_seconds`` while another process holds its lock."""
    deadline = time.monotonic() + (LOCK_WAIT_SECONDS if wait_seconds is None else wait_seconds)
    delay = 0.2
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            con.execute("set TimeZone = 'UTC'")
            con.execute("set enable_progress_bar = false")
            return con
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            if time.monotonic() >= deadline:
                raise WarehouseLocked(
                    f"The warehouse {path} is locked by another process: {exc}. "
                    "Only one process may write it at a time; wait for the running task "
                    "(Airflow pool 'segment_mart_warehouse') or stop the other process."
                ) from exc
            log.info("warehouse %s is locked; waiting %.1fs", path, delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


@contextmanager
def connect(
    path: Path, *, read_only: bool = False, wait_seconds: float | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse (creating its folder for writers) and always close it."""
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.exists():
        raise FileNotFoundError(f"The warehouse {path} does not exist yet: run `segment-mart ingest` first.")
    con = open_connection(path, read_only, wait_seconds)
    try:
        yield con
    finally:
        con.close()


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    row = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchall()[0]
    return bool(row and row[0])
