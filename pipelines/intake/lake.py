"""The raw lake: the one module that knows where raw data lives and how it is replaced.

Ingestion writes every night's accepted rows as Parquet, never into a database file, so any
engine reads the same raw layer (dbt on DuckDB through ``read_parquet``; dbt on Spark through
its Parquet reader) and the three sources of a night can be ingested in parallel::

    <lake>/raw/<source>/<entity>/_run_date=YYYY-MM-DD/part-<load_id>-<n>.parquet
    <lake>/raw/_load_audit/run_date=YYYY-MM-DD/source=<source>/audit-<load_id>.parquet
    <lake>/raw/_quarantine/run_date=YYYY-MM-DD/source=<source>/<entity>-<load_id>.parquet

* Entity files hold the contract columns, typed (string, BIGINT, DECIMAL(18,2), BOOLEAN, DATE,
  TIMESTAMP in microseconds without time zone), then the file's extra columns as strings,
  then ``_source_file``, ``_source_line``, ``_loaded_at``. ``_run_date`` is the partition
  folder (hive style), never a column inside the files. Only types Spark 4 reads are written
  (no HUGEINT, UUID, unsigned, nanosecond or zoned timestamps).
* Usage events are written in arrival order in row groups of at most ``EVENTS_ROW_GROUP``
  rows, so each row group's ``occurred_at`` min/max statistics cover a short time span and a
  reader filtering on time skips the rest (the dedup of the next night reads a few row groups
  of the history, not the history). Ingestion re-sorts a partition whose row groups overlap
  too much (an export in random order).
* A night's partition is replaced as a whole: written into a hidden sibling folder
  (``.tmp-...``), fsynced, then swapped with the live folder by one atomic
  ``renameat2(RENAME_EXCHANGE)`` (Linux); readers see the old or the new folder, never a mix.
  Where the exchange is not available, the old folder is renamed aside first and put back by
  :func:`recover` if a crash hits between the two renames. Hidden folders (``.`` prefix) are
  ignored by DuckDB's globs below and by Spark's file index.
* Each loaded file's ``load_id`` is in the audit and in the partition's file names, so the
  intake checks can tell a partition from a half-finished rerun.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import errno
import logging
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from pipelines.contract import Entity

log = logging.getLogger(__name__)

RAW = "raw"
PARTITION_COLUMN = "_run_date"
AUDIT = "_load_audit"
QUARANTINE = "_quarantine"
#: Rows per row group of an events partition (granularity of the time statistics).
EVENTS_ROW_GROUP = 262_144

#: Load audit: one row per landing file of a source and night (run_date, source: partitions).
AUDIT_SCHEMA = pa.schema([
    ("entity", pa.string()),
    ("file", pa.string()),
    ("rows_read", pa.int64()),
    ("rows_loaded", pa.int64()),
    ("rows_quarantined", pa.int64()),
    ("rows_deduplicated", pa.int64()),
    ("duration_seconds", pa.float64()),
    ("status", pa.string()),
    ("error", pa.string()),
    ("load_id", pa.string()),
    ("loaded_at", pa.timestamp("us")),
    # optional contract columns the file left out (comma separated; their defaults apply)
    ("columns_defaulted", pa.string()),
    # snapshot rows quarantined tonight whose key keeps its row of the previous drop
    ("rows_carried_forward", pa.int64()),
])
#: Quarantine: one row per (line, column, reason) of a bad row, the whole record as JSON.
QUARANTINE_SCHEMA = pa.schema([
    ("entity", pa.string()),
    ("file", pa.string()),
    ("line", pa.int64()),
    ("column_name", pa.string()),
    ("value", pa.string()),
    ("reason", pa.string()),
    ("record", pa.string()),
])

_DATE_DIR = re.compile(r"^_run_date=(\d{4}-\d{2}-\d{2})$")


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# --------------------------------------------------------------------------- layout


def raw_dir(lake: Path) -> Path:
    return Path(lake) / RAW


def entity_dir(lake: Path, entity: Entity) -> Path:
    return raw_dir(lake) / entity.source / entity.name


def partition_dir(lake: Path, entity: Entity, run_date: dt.date) -> Path:
    return entity_dir(lake, entity) / f"{PARTITION_COLUMN}={run_date.isoformat()}"


def audit_dir(lake: Path, run_date: dt.date, source: str) -> Path:
    return raw_dir(lake) / AUDIT / f"run_date={run_date.isoformat()}" / f"source={source}"


def quarantine_dir(lake: Path, run_date: dt.date, source: str) -> Path:
    return raw_dir(lake) / QUARANTINE / f"run_date={run_date.isoformat()}" / f"source={source}"


def entity_glob(lake: Path, entity: Entity) -> str:
    return f"{entity_dir(lake, entity)}/{PARTITION_COLUMN}=*/*.parquet"


def part_file_name(load_id: str, n: int) -> str:
    return f"part-{load_id}-{n:05d}.parquet"


def load_id_of(path: Path) -> str | None:
    """The load id in an entity file's name (``part-<load_id>-<n>.parquet``)."""
    match = re.fullmatch(r"part-(.+)-\d{5}\.parquet", path.name)
    return match[1] if match else None


def new_load_id(run_date: dt.date) -> str:
    """Sortable and unique: ``<run date>T<UTC time>-<random>``."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    return f"{run_date:%Y%m%d}-{stamp}-{uuid.uuid4().hex[:8]}"


# --------------------------------------------------------------------------- relations


def relation_sql(lake: Path, entity: Entity) -> str:
    """DuckDB relation of one raw table: every partition, ``_run_date`` from the folder name.

    The dbt sources (``models/staging/_staging__sources.yml``) use the same expression with
    the lake root from ``SEGMENT_MART_DBT_LAKE``; a test keeps the two in step.
    """
    return (
        f"read_parquet({_lit(entity_glob(lake, entity))}, hive_partitioning = true, "
        "union_by_name = true)"
    )


def audit_relation_sql(lake: Path) -> str:
    path = f"{raw_dir(lake) / AUDIT}/run_date=*/source=*/*.parquet"
    return f"read_parquet({_lit(path)}, hive_partitioning = true, union_by_name = true)"


def quarantine_relation_sql(lake: Path) -> str:
    path = f"{raw_dir(lake) / QUARANTINE}/run_date=*/source=*/*.parquet"
    return f"read_parquet({_lit(path)}, hive_partitioning = true, union_by_name = true)"


def has_audit(lake: Path) -> bool:
    return any((raw_dir(lake) / AUDIT).glob("run_date=*/source=*/*.parquet"))


def has_quarantine(lake: Path) -> bool:
    return any((raw_dir(lake) / QUARANTINE).glob("run_date=*/source=*/*.parquet"))


def partition_dates(lake: Path, entity: Entity) -> list[dt.date]:
    """Run dates with a partition of ``entity``, oldest first."""
    root = entity_dir(lake, entity)
    if not root.is_dir():
        return []
    dates = [dt.date.fromisoformat(m[1]) for p in root.iterdir() if (m := _DATE_DIR.match(p.name))]
    return sorted(dates)


def partition_files(lake: Path, entity: Entity, run_date: dt.date) -> list[Path]:
    directory = partition_dir(lake, entity, run_date)
    return sorted(directory.glob("*.parquet")) if directory.is_dir() else []


def outdated_partitions(lake: Path, run_date: dt.date, entities: list[Entity]) -> list[Entity]:
    """The snapshot entities whose partition for ``run_date`` was written by a loader older than
    the carry forward (no ``_carried_forward_from`` column): dbt's staging reads that column, so
    such a night must be ingested again (``pipelines/ops/preflight.py`` says so before dbt runs)."""
    import pyarrow.parquet as pq

    from pipelines.contract import CARRIED_FORWARD_COLUMN

    return [e for e in entities if e.kind == "snapshot" and (files := partition_files(lake, e, run_date))
            and CARRIED_FORWARD_COLUMN not in pq.read_schema(files[0]).names]


def files_sql(paths: list[Path]) -> str:
    """A DuckDB list literal of file paths (for ``read_parquet([...])``)."""
    return "[" + ", ".join(_lit(str(p)) for p in paths) + "]"


def create_views(con: object, lake: Path, schema: str = "raw") -> list[str]:
    """Create views ``<schema>.<source>__<entity>``, ``<schema>._load_audit`` and
    ``<schema>._quarantine`` over the lake on a DuckDB connection (for ad-hoc SQL and tests).
    Only tables with data get a view (read_parquet needs at least one file); returns their names."""
    from pipelines.contract import ENTITIES

    made = []
    con.execute(f"create schema if not exists {schema}")  # type: ignore[attr-defined]
    for entity in ENTITIES:
        if partition_dates(lake, entity):
            meta = ", ".join(f"{c}" for c in ("_run_date", "_source_file", "_source_line", "_loaded_at"))
            con.execute(  # type: ignore[attr-defined]
                f"create or replace view {schema}.{entity.raw_table} as select * exclude ({meta}), {meta} "
                f"from {relation_sql(lake, entity)}"
            )
            made.append(entity.raw_table)
    if has_audit(lake):
        con.execute(  # type: ignore[attr-defined]
            f"create or replace view {schema}.{AUDIT} as select run_date, source, entity, file, rows_read, "
            "rows_loaded, rows_quarantined, rows_deduplicated, duration_seconds, status, error, load_id, "
            f"loaded_at, columns_defaulted, rows_carried_forward from {audit_relation_sql(lake)}"
        )
        made.append(AUDIT)
    if has_quarantine(lake):
        con.execute(  # type: ignore[attr-defined]
            f"create or replace view {schema}.{QUARANTINE} as select run_date, source, entity, file, line, "
            f"column_name, value, reason, record from {quarantine_relation_sql(lake)}"
        )
        made.append(QUARANTINE)
    return made


# --------------------------------------------------------------------------- atomic replace


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def fsync_tree(path: Path) -> None:
    """Flush every file of a freshly written folder and the folder itself to disk."""
    for file in path.rglob("*"):
        if file.is_file():
            fd = os.open(file, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    for directory in [path, *(d for d in path.rglob("*") if d.is_dir())]:
        _fsync_dir(directory)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2); False where the system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), f"{a} <-> {b}")


def replace_dir(new: Path, target: Path) -> None:
    """Make ``new`` (a fully written sibling folder) live at ``target``, atomically.

    The previous content of ``target`` is deleted afterwards. ``new`` must be on the same
    file system (a sibling), which :func:`staging_dir` guarantees.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fsync_tree(new)
    if not target.exists():
        os.rename(new, target)
    elif _exchange(new, target):
        shutil.rmtree(new)  # now holds the old content
    else:
        aside = target.parent / f".old-{target.name}-{uuid.uuid4().hex[:8]}"
        os.rename(target, aside)  # a crash here is repaired by recover()
        os.rename(new, target)
        shutil.rmtree(aside)
    _fsync_dir(target.parent)


def staging_dir(target: Path, load_id: str) -> Path:
    """A new hidden sibling of ``target`` to write a partition's next content into."""
    path = target.parent / f".tmp-{target.name}-{load_id}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def recover(directory: Path, target_prefix: str = "") -> None:
    """Clean up after a crashed write under ``directory`` (call while holding the lock of the
    source that owns the folders): put back a partition renamed aside whose replacement never
    arrived, and delete unfinished ``.tmp-`` folders. Only folders whose target name starts
    with ``target_prefix`` are touched (the audit and quarantine trees are shared by sources
    that ingest in parallel)."""
    if not directory.is_dir():
        return
    for aside in directory.rglob(f".old-{target_prefix}*"):
        name = aside.name[len(".old-"):].rsplit("-", 1)[0]
        live = aside.parent / name
        if live.exists():
            shutil.rmtree(aside, ignore_errors=True)
        else:
            log.warning("restoring %s from %s (an earlier write crashed mid-swap)", live, aside)
            os.rename(aside, live)
    for tmp in directory.rglob(f".tmp-{target_prefix}*"):
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)


def recover_source(lake: Path, source: str) -> None:
    """:func:`recover` for everything one source's ingest writes."""
    recover(raw_dir(lake) / source)
    recover(raw_dir(lake) / AUDIT, f"source={source}-")
    recover(raw_dir(lake) / QUARANTINE, f"source={source}-")


class Commit:
    """Partitions staged by one ingest, made live together at the end (in order added)."""

    def __init__(self) -> None:
        self._staged: list[tuple[Path, Path]] = []

    def stage(self, target: Path, load_id: str) -> Path:
        tmp = staging_dir(target, load_id)
        self._staged.append((tmp, target))
        return tmp

    def commit(self) -> None:
        for tmp, target in self._staged:
            replace_dir(tmp, target)
        self._staged.clear()

    def discard(self) -> None:
        for tmp, _ in self._staged:
            shutil.rmtree(tmp, ignore_errors=True)
        self._staged.clear()

    @contextlib.contextmanager
    def atomically(self) -> Iterator[Commit]:
        """Discard everything staged when the block raises."""
        try:
            yield self
        except BaseException:
            self.discard()
            raise
