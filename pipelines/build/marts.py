"""The one way the quality gate and the publish read the marts, and the cheap fingerprint that
ties a gate result to the exact state of the marts it validated.

:func:`open_marts` returns a DuckDB connection in which ``marts.<name>`` resolves to the night's
marts, read-only. On the embedded DuckDB engine that is the working warehouse attached
``READ_ONLY`` (and made the default catalog, so ``raw.*`` resolves too). On Spark
(``SEGMENT_MART_ENGINE=spark``), which writes the marts as Parquet files, they are DuckDB views
``marts.<name>`` over those files (``<home>/spark/warehouse/marts.db/<name>/``, one
``as_of_date=...`` folder per night for the daily marts), with the columns and types of each
mart's enforced contract (:mod:`pipelines.build.spark_marts`); the gate and the publish do not change.

The connection's own catalog is in memory and writable, so the publish can ``ATTACH`` the new
release's DuckDB file read-write next to the read-only marts.

:func:`mart_fingerprint` is a cheap whole-table aggregate per mart: row count and the sum of a
64-bit hash of every row, per partition for daily marts and per month for monthly marts (dbt's
model meta, :mod:`pipelines.quality.declared`). It reads each row once inside DuckDB (no rows
leave the engine) and costs a fraction of a content checksum; the gate records it, the publish recomputes it and refuses when anything
differs, and both compare it with the previous release to find the partitions that changed.

:func:`warehouse_witness` is what the file system says about the warehouse file (and its WAL)
when the gate starts: the publish trusts the gate's fingerprint without recomputing it only when
:func:`unchanged_since` proves the file was not written since (same inode, size, modification and
status-change times; ``ctime`` cannot be set back by any program), and recomputes it otherwise.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

    from pipelines.settings import Settings

from pipelines.warehouse import MARTS_SCHEMA, quote_ident

log = logging.getLogger(__name__)

#: Catalog name of the working warehouse inside the connection of :func:`open_marts`.
WAREHOUSE_CATALOG = "warehouse"


def open_marts(settings: Settings, *, wait_seconds: float | None = None) -> duckdb.DuckDBPyConnection:
    """A connection in which ``marts.<name>`` resolves to the night's marts, read-only.

    Waits (bounded) while a writer holds the warehouse, then raises
    :class:`pipelines.warehouse.WarehouseLocked` (transient: the DAG retries it). On Spark,
    raises :class:`pipelines.warehouse.WarehouseUnavailable` when Spark wrote no marts.
    """
    from pipelines.warehouse import attach_read_only

    if settings.engine == "spark":
        return _open_spark_marts(settings)
    return attach_read_only(Path(settings.warehouse), WAREHOUSE_CATALOG, wait_seconds=wait_seconds)


def _open_spark_marts(settings: Settings) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with views ``marts.<name>`` over Spark's Parquet files.

    Nothing else writes them between the build and the publish: every step that writes takes the
    pipeline home's run lock, and Spark replaces a relation in place only while dbt runs."""
    from pipelines.build.dbt import target_dir
    from pipelines.build.spark_marts import (
        attach_spark_relations,
        contract_columns,
        spark_warehouse,
    )
    from pipelines.warehouse import WarehouseUnavailable, in_memory

    manifest = target_dir(settings) / "manifest.json"
    contracts = contract_columns(manifest, MARTS_SCHEMA)
    if not contracts:
        raise WarehouseUnavailable(
            f"no dbt manifest with the marts' contracts at {manifest}: run dbt for this date first "
            "(`segment-mart build --run-date D`); the marts Spark wrote are read with their contract's "
            "columns and types")
    con = in_memory()
    attached = attach_spark_relations(con, settings, MARTS_SCHEMA, sorted(contracts), columns=contracts)
    if not attached:
        con.close()
        raise WarehouseUnavailable(
            f"Spark wrote no marts under {spark_warehouse(settings) / (MARTS_SCHEMA + '.db')}: run dbt for "
            "this date first (`segment-mart build --run-date D` with SEGMENT_MART_ENGINE=spark)")
    return con


#: A witness taken less than this long after the file's last change is not trusted: a write in
#: the same tick of the file system's clock (ext4: a few milliseconds) could leave the times equal.
WITNESS_SETTLE_SECONDS = 1.0


def warehouse_witness(settings: Settings) -> dict[str, Any] | None:
    """The working warehouse file's and its WAL's ``[device, inode, size, mtime_ns, ctime_ns]``
    (None for a missing WAL) and when they were read; None on Spark (its marts are folders of
    Parquet files: the publish always recomputes their fingerprint). Take it BEFORE reading the
    marts, so a write while they are read shows as a change."""
    if settings.engine == "spark":
        return None
    path = Path(settings.warehouse)
    out: dict[str, Any] = {"taken_ns": time.time_ns()}
    for name, file in (("file", path), ("wal", path.with_name(path.name + ".wal"))):
        try:
            st = os.stat(file)
        except FileNotFoundError:
            out[name] = None
            continue
        out[name] = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
    return out


def unchanged_since(witness: dict[str, Any] | None, settings: Settings) -> bool:
    """Whether the warehouse provably was not written since ``witness``
    (:func:`warehouse_witness`) was taken: file and WAL the same inodes, sizes and times, and the
    witness taken :data:`WITNESS_SETTLE_SECONDS` after their last change. False whenever that
    cannot be shown (then the caller compares the contents)."""
    now = warehouse_witness(settings)
    if not witness or now is None or not witness.get("file"):
        return False
    changed_ns = max(entry[4] for entry in (witness["file"], witness.get("wal")) if entry)
    if witness["taken_ns"] - changed_ns < WITNESS_SETTLE_SECONDS * 1e9:
        return False
    return now["file"] == witness["file"] and now["wal"] == witness.get("wal")


def list_marts(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Tables and views of schema ``marts`` in the default catalog, sorted."""
    return [r[0] for r in con.execute(
        "select table_name from information_schema.tables where table_schema = ? "
        "and table_catalog = current_database() order by table_name", [MARTS_SCHEMA]).fetchall()]


def mart_columns(con: duckdb.DuckDBPyConnection, mart: str) -> list[tuple[str, str]]:
    """``(column, type)`` of ``marts.<mart>`` in table order (works for tables and views)."""
    return [(r[0], r[1]) for r in con.execute(
        "select column_name, data_type from information_schema.columns where table_schema = ? "
        "and table_name = ? and table_catalog = current_database() order by ordinal_position",
        [MARTS_SCHEMA, mart]).fetchall()]


#: The partition key of the rows whose partition column is NULL (never a date: it sorts after them).
NULL_PARTITION = "null"


def partition_key(value: Any) -> str:
    """The text form of a partition value used in manifests and file names (ISO for dates)."""
    if value is None:
        return NULL_PARTITION
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def partition_filter(column: str, keys: list[str]) -> tuple[str, list[Any]]:
    """``(sql condition, parameters)`` selecting the rows of the partitions ``keys`` (ISO dates,
    or :data:`NULL_PARTITION`) of a date column."""
    col = quote_ident(column)
    dates = [dt.date.fromisoformat(k) for k in keys if k != NULL_PARTITION]
    terms = [f"{col} in ({', '.join('?' for _ in dates)})"] if dates else []
    if NULL_PARTITION in keys:
        terms.append(f"{col} is null")
    return ("(" + " or ".join(terms) + ")") if terms else "false", dates


def mart_fingerprint(
    con: duckdb.DuckDBPyConnection, mart: str, columns: list[tuple[str, str]], partition_by: str | None,
    month_column: str | None = None,
) -> dict[str, Any]:
    """Row count and sum of row hashes of ``marts.<mart>``, per partition when ``partition_by``.

    ``{"columns": [[name, type], ...], "rows": n, "hash": "..."}`` for a whole mart;
    ``{"columns": ..., "rows": n, "partitions": {"2026-01-05": [rows, "hash"], ...}}`` for a
    partitioned (daily) one. A monthly mart (``month_column``) gets both from one grouped scan:
    ``"hash"`` of the whole mart (the sum of its months' sums, equal to the whole mart's) and
    ``"months": {"2026-01-01": [rows, "hash"], ...}``, which the gate and the publish compare with
    the previous release's to find the months that changed (validated, and written, month by month). The sum (not xor) of DuckDB's 64-bit
    ``hash`` of all columns is order-independent and does not cancel out on repeated rows. Floats
    are hashed bit for bit, so a rebuild whose parallel sums differ in the last bit shows as
    changed (and is republished, with an unchanged content checksum); a changed value always shows.
    """
    table = f"{MARTS_SCHEMA}.{quote_ident(mart)}"
    row_hash = f"hash({', '.join(quote_ident(c) for c, _ in columns)})" if columns else "0"
    out: dict[str, Any] = {"columns": [[c, t] for c, t in columns], "partition_by": partition_by}
    grouped = partition_by or month_column
    if grouped is None:
        n, h = con.execute(
            f"select count(*), coalesce(sum({row_hash}::hugeint), 0)::varchar from {table}"
        ).fetchone()  # type: ignore[misc]
        out.update(rows=int(n), hash=str(h))
        return out
    rows = con.execute(
        f"select {quote_ident(grouped)} as p, count(*), sum({row_hash}::hugeint)::varchar "
        f"from {table} group by all order by p"
    ).fetchall()
    parts = {partition_key(p): [int(n), str(h)] for p, n, h in rows}
    out["rows"] = sum(int(n) for _, n, _ in rows)
    if partition_by is not None:
        out["partitions"] = parts
        return out
    out.update(hash=str(sum(int(h) for _, h in parts.values())), month_column=month_column, months=parts)
    return out


def changed_partitions(current: dict[str, Any], previous: dict[str, Any] | None) -> list[str]:
    """Partitions of ``current`` (a partitioned fingerprint) that are new or differ from
    ``previous`` (the same mart's entry in the previous release's manifest); every partition
    when there is no comparable previous entry (first publish, or a changed schema). For a
    monthly mart's fingerprint, its months against the previous manifest's ``months``."""
    key = "months" if current.get("month_column") else "partitions"
    parts = current.get(key) or {}
    prev_parts = (previous or {}).get(key)
    prev_columns = [[c["name"], c["type"]] for c in (previous or {}).get("columns") or []]
    if (not prev_parts or prev_columns != current.get("columns")
            or (previous or {}).get("month_column") != current.get("month_column")):
        return sorted(parts)
    changed = []
    for k, (rows, digest) in parts.items():
        before = prev_parts.get(k)
        if before is None or before.get("rows") != rows or before.get("fingerprint") != digest:
            changed.append(k)
    return sorted(changed)
