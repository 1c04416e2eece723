"""Ingestion of one night's drop into the raw layer of the warehouse.

Per entity file: read every value as text, type it per the contract, send rows with
row-level defects to ``raw._quarantine`` (file, line, column, reason, the row as
JSON) and load the valid rows into ``raw.<source>__<entity>`` with load metadata.
Re-ingesting a run date replaces that date's rows (one transaction per source), so
reruns give identical tables. Usage events are deduplicated on ``event_id`` across
drops: an event is kept once, under the earliest drop that held it, whatever order
drops are ingested in. ``raw._load_audit`` records what happened to every file.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from dataclasses import dataclass

import duckdb

from pipelines.contract import (
    DUCKDB_TYPES,
    LOAD_METADATA_COLUMNS,
    SOURCES,
    Column,
    Entity,
    entities_of,
)
from pipelines.landing import FileProblem, LandingFile, SourceRejected, find_files
from pipelines.settings import Settings
from pipelines.warehouse import connect

log = logging.getLogger(__name__)

AUDIT_TABLE = "raw._load_audit"
QUARANTINE_TABLE = "raw._quarantine"

_AUDIT_DDL = f"""
create table if not exists {AUDIT_TABLE} (
    run_date date, source varchar, entity varchar, file varchar,
    rows_read bigint, rows_loaded bigint, rows_quarantined bigint, rows_deduplicated bigint,
    duration_seconds double, status varchar, error varchar
)"""
_QUARANTINE_DDL = f"""
create table if not exists {QUARANTINE_TABLE} (
    run_date date, source varchar, entity varchar, file varchar, line bigint,
    column_name varchar, value varchar, reason varchar, record varchar
)"""


@dataclass(frozen=True)
class EntityLoad:
    """What happened to one landing file."""

    source: str
    entity: str
    file: str
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    rows_deduplicated: int
    duration_seconds: float


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# --- reading a file as text -------------------------------------------------------------


def _read_as_text(con: duckdb.DuckDBPyConnection, lf: LandingFile) -> None:
    """Create temp table ``_landing`` with every file column as VARCHAR plus ``_line``."""
    path = _lit(str(lf.path))
    for table in ("_landing", "_landing_text"):
        con.execute(f"drop table if exists {table}")
    if lf.file_format == "csv":
        columns = "{" + ", ".join(f"{_lit(c)}: 'VARCHAR'" for c in lf.columns) + "}"
        con.execute(
            f"""create temp table _landing_text as
            select * from read_csv({path}, header = true, auto_detect = false, columns = {columns},
                delim = ',', quote = '"', escape = '"', store_rejects = true,
                rejects_table = '_csv_rejects', rejects_scan = '_csv_reject_scans')"""
        )
        reject_lines = [r[0] for r in con.execute("select distinct line from _csv_rejects order by line").fetchall()]
        # rowid counts accepted records in file order from a base (0, or a high offset
        # inside a transaction): line = rowid - base + 2 behind the header, and every
        # rejected record before a row shifts it one line further down.
        base = con.execute("select coalesce(min(rowid), 0) from _landing_text").fetchall()[0][0]
        shift = "0"
        if reject_lines:
            thresholds = ", ".join(str(line - 2 - i) for i, line in enumerate(reject_lines))
            shift = f"len(list_filter([{thresholds}], lambda t: rowid - {base} >= t))"
        con.execute(
            f"create temp table _landing as select *, rowid - {base} + 2 + {shift} as _line from _landing_text"
        )
        con.execute("drop table _landing_text")
        con.execute("create or replace temp table _malformed as select * from _csv_rejects")
    elif lf.file_format == "jsonl":
        extracts = ", ".join(
            f"json ->> {_lit(f)} as {_q(c)}" for f, c in zip(lf.file_columns, lf.columns, strict=True)
        )
        con.execute(
            f"""create temp table _landing as
            select {extracts}, row_number() over (order by _ordinal) as _line
            from (select json, row_number() over () as _ordinal
                  from read_json_objects({path}, format = 'newline_delimited'))"""
        )
    else:
        casts = ", ".join(
            f"cast({_q(f)} as varchar) as {_q(c)}" for f, c in zip(lf.file_columns, lf.columns, strict=True)
        )
        con.execute(
            f"""create temp table _landing as
            select {casts}, file_row_number + 1 as _line
            from read_parquet({path}, file_row_number = true)"""
        )
    for column in lf.entity.columns:  # optional columns absent from the file
        if column.name not in lf.columns:
            con.execute(f"alter table _landing add column {_q(column.name)} varchar")


# --- typing and row-level checks ----------------------------------------------------------


def _typed(column: Column) -> str:
    raw = f"nullif(trim({_q(column.name)}), '')"
    if column.type == "timestamp":
        # Through timestamptz: an offset is converted to UTC (the session time zone is UTC),
        # a value without one is read as UTC.
        return f"try_cast(try_cast({raw} as timestamptz) as timestamp)"
    if column.type == "boolean":
        return f"try_cast(lower({raw}) as boolean)"
    if column.type == "string":
        return raw
    return f"try_cast({raw} as {DUCKDB_TYPES[column.type]})"


def _failure(column: str, condition: str, reason_sql: str) -> str:
    return f"case when {condition} then {{'column_name': {_lit(column)}, 'reason': {reason_sql}}} end"


def _column_checks(column: Column) -> list[str]:
    name = column.name
    raw = f"nullif(trim({_q(name)}), '')"
    typed = f"_t_{name}"
    checks: list[str] = []
    if column.required:
        checks.append(_failure(name, f"{raw} is null", _lit("missing required value")))
    if column.type != "string":
        checks.append(
            _failure(
                name,
                f"{raw} is not null and {typed} is null",
                f"'unparseable {column.type} value ''' || {raw} || ''''",
            )
        )
    if column.allowed:
        allowed = ", ".join(_lit(v) for v in column.allowed)
        checks.append(
            _failure(
                name,
                f"{raw} is not null and lower({raw}) not in ({allowed})",
                f"'value ''' || {raw} || ''' is not one of: {', '.join(column.allowed)}'",
            )
        )
    if column.pattern:
        checks.append(
            _failure(
                name,
                f"{raw} is not null and not regexp_full_match({raw}, {_lit(column.pattern)})",
                f"'value ''' || {raw} || ''' does not match {column.pattern}'",
            )
        )
    if column.min_value is not None:
        checks.append(
            _failure(name, f"{typed} < {column.min_value}", f"'value ''' || {raw} || ''' is below the minimum {column.min_value:g}'")
        )
    if column.max_value is not None:
        checks.append(
            _failure(name, f"{typed} > {column.max_value}", f"'value ''' || {raw} || ''' is above the maximum {column.max_value:g}'")
        )
    return checks


def _check_rows(con: duckdb.DuckDBPyConnection, entity: Entity, file_columns: tuple[str, ...]) -> None:
    """Temp view ``_checked``: typed columns ``_t_<name>``, ``_copy_number`` and ``_failures``.

    A view, not a table: the loader reads it twice (valid rows, quarantine) instead of
    holding a typed copy of a 100-million-row file in memory.
    """
    typed = ", ".join(f"{_typed(c)} as _t_{c.name}" for c in entity.columns)
    checks = [check for c in entity.columns for check in _column_checks(c)]
    names = {c.name for c in entity.columns}
    for rc in entity.row_checks:
        sql = re.sub(r"\b(\w+)\b", lambda m: f"_t_{m[1]}" if m[1] in names else m[1], rc.sql)
        checks.append(_failure(rc.column, f"not coalesce({sql}, true)", _lit(rc.reason)))
    key = f"trim({_q(entity.key)})"
    row_hash = f"hash(row({', '.join(_q(c) for c in file_columns)}))"
    # Keys seen more than once: a small table, so the big file is only hashed by key.
    con.execute(
        f"""create or replace temp table _duplicates as
        with repeated as (
            select {key} as _key from _landing where {key} is not null group by all having count(*) > 1
        ),
        copies as (
            select l._line, {key} as _key, {row_hash} as _row_hash
            from _landing l semi join repeated r on {key} = r._key
        )
        select _line,
            count(distinct _row_hash) over (partition by _key) > 1 as _is_conflict,
            min(_line) over (partition by _key) as _first_line,
            row_number() over (partition by _key, _row_hash order by _line) as _copy_number
        from copies"""
    )
    # A key repeated with different content cannot be resolved: every such row is
    # quarantined. A row repeated byte for byte is loaded once (counted as deduplicated).
    duplicate = _failure(
        entity.key,
        "coalesce(_is_conflict, false)",
        f"'duplicate key {entity.key} ' || {key} || ' with different content in this file (first on line ' || _first_line || ')'",
    )
    con.execute(
        f"""create or replace temp view _checked as
        select *, list_filter([{", ".join([*checks, duplicate])}], lambda f: f is not null) as _failures
        from (
            select l.*, {typed}, d._is_conflict, d._first_line, coalesce(d._copy_number, 1) as _copy_number
            from _landing l left join _duplicates d using (_line)
        )"""
    )


# --- writing the raw layer ----------------------------------------------------------------


def _ensure_raw_table(con: duckdb.DuckDBPyConnection, entity: Entity, extra: list[str]) -> str:
    table = f"raw.{entity.raw_table}"
    columns = [f"{_q(c.name)} {DUCKDB_TYPES[c.type]}" for c in entity.columns]
    columns += [f"{name} {kind}" for name, kind in LOAD_METADATA_COLUMNS.items()]
    con.execute(f"create table if not exists {table} ({', '.join(columns)})")
    existing = {r[0] for r in con.execute(f"select column_name from (describe {table})").fetchall()}
    for name in extra:
        if name not in existing:
            con.execute(f"alter table {table} add column {_q(name)} varchar")
    return table


def _load_entity(
    con: duckdb.DuckDBPyConnection, lf: LandingFile, run_date: dt.date, loaded_at: dt.datetime
) -> EntityLoad:
    started = time.monotonic()
    entity = lf.entity
    try:
        _read_as_text(con, lf)
    except duckdb.Error as exc:  # e.g. a broken JSON line further down the file
        problem = FileProblem(
            lf.path,
            f"could not be read as {lf.file_format.upper()} ({str(exc).splitlines()[0]})",
            "Fix or re-export the file, then re-run the ingest.",
        )
        raise SourceRejected(entity.source, run_date, [problem]) from exc
    _check_rows(con, entity, lf.columns)
    contract_names = {c.name for c in entity.columns}
    extra = [c for c in lf.columns if c not in contract_names]
    table = _ensure_raw_table(con, entity, extra)
    source_file = str(lf.path)
    rd = _lit(run_date.isoformat())

    # Quarantine: one row per (line, column, reason), the whole record as JSON.
    record = "to_json(struct_pack(" + ", ".join(f"{_q(c)} := {_q(c)}" for c in lf.columns) + "))"
    con.execute(
        f"""insert into {QUARANTINE_TABLE}
        select {rd}::date, {_lit(entity.source)}, {_lit(entity.name)}, {_lit(source_file)}, _line,
            f.column_name, {_value_of_failed_column(lf)}, f.reason, {record}
        from (select *, unnest(_failures) as f from _checked where len(_failures) > 0)"""
    )
    if lf.file_format == "csv":
        con.execute(
            f"""insert into {QUARANTINE_TABLE}
            select {rd}::date, {_lit(entity.source)}, {_lit(entity.name)}, {_lit(source_file)}, line,
                coalesce(column_name, '(row)'), null, 'malformed CSV record: ' || error_message,
                to_json(struct_pack(csv_line := csv_line))
            from _malformed"""
        )
        malformed = con.execute("select count(distinct line) from _malformed").fetchall()[0][0]
    else:
        malformed = 0

    selected = ", ".join(f"_t_{c.name} as {_q(c.name)}" for c in entity.columns)
    selected += "".join(f", {_q(c)}" for c in extra)
    selected += f", {rd}::date as _run_date, {_lit(source_file)} as _source_file, _line as _source_line, "
    selected += f"{_lit(loaded_at.isoformat(sep=' '))}::timestamp as _loaded_at"
    valid = f"select {selected} from _checked where len(_failures) = 0 and _copy_number = 1"

    con.execute(f"delete from {table} where _run_date = {rd}::date")
    if entity.kind == "events":
        key = _q(entity.key)
        # Keep each event under the earliest drop holding it, whatever the ingest order.
        con.execute(
            f"""delete from {table} where _run_date > {rd}::date
            and {key} in (select trim({key}) from _landing)"""
        )
        con.execute(
            f"""insert into {table} by name
            select * from ({valid}) v where not exists (select 1 from {table} t where t.{key} = v.{key})"""
        )
    else:
        con.execute(f"insert into {table} by name {valid}")

    rows_read = con.execute("select count(*) from _landing").fetchall()[0][0] + malformed
    loaded = con.execute(f"select count(*) from {table} where _run_date = {rd}::date").fetchall()[0][0]
    quarantined = con.execute(
        f"select count(distinct line) from {QUARANTINE_TABLE} where run_date = {rd}::date "
        f"and entity = {_lit(entity.name)} and source = {_lit(entity.source)}"
    ).fetchall()[0][0]
    deduplicated = rows_read - loaded - quarantined
    return EntityLoad(
        entity.source,
        entity.name,
        source_file,
        rows_read,
        loaded,
        quarantined,
        deduplicated,
        round(time.monotonic() - started, 3),
    )


def _value_of_failed_column(lf: LandingFile) -> str:
    cases = " ".join(f"when {_lit(c)} then {_q(c)}" for c in lf.columns)
    return f"case f.column_name {cases} end"


def ingest_source(settings: Settings, run_date: dt.date, source: str) -> list[EntityLoad]:
    """Load one source of one night's drop; replaces that run date's rows of the source.

    Raises SourceRejected (and changes nothing but the audit) on file-level defects.
    """
    drop_dir = settings.drop_dir(run_date)
    files, problems = find_files(drop_dir, source)
    loaded_at = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    with connect(settings.warehouse) as con:
        con.execute("create schema if not exists raw")
        con.execute(_AUDIT_DDL)
        con.execute(_QUARANTINE_DDL)
        if problems:
            con.execute("begin")
            con.execute(f"delete from {AUDIT_TABLE} where run_date = ? and source = ?", [run_date, source])
            con.executemany(
                f"insert into {AUDIT_TABLE} values (?, ?, ?, ?, 0, 0, 0, 0, 0, 'failed', ?)",
                [
                    (run_date, source, p.path.stem.split(".")[0], str(p.path), f"{p.problem}. {p.action}")
                    for p in problems
                ],
            )
            con.execute("commit")
            raise SourceRejected(source, run_date, problems)
        results: list[EntityLoad] = []
        con.execute("begin")
        try:
            con.execute(f"delete from {AUDIT_TABLE} where run_date = ? and source = ?", [run_date, source])
            con.execute(f"delete from {QUARANTINE_TABLE} where run_date = ? and source = ?", [run_date, source])
            for lf in files:
                result = _load_entity(con, lf, run_date, loaded_at)
                log.info(
                    "%s/%s %s: read %d, loaded %d, quarantined %d, deduplicated %d in %.1fs",
                    result.source, result.entity, run_date, result.rows_read, result.rows_loaded,
                    result.rows_quarantined, result.rows_deduplicated, result.duration_seconds,
                )
                con.execute(
                    f"insert into {AUDIT_TABLE} values (?, ?, ?, ?, ?, ?, ?, ?, ?, 'loaded', null)",
                    [run_date, result.source, result.entity, result.file, result.rows_read,
                     result.rows_loaded, result.rows_quarantined, result.rows_deduplicated,
                     result.duration_seconds],
                )
                results.append(result)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
    return results


def ingest(settings: Settings, run_date: dt.date, sources: tuple[str, ...] = SOURCES) -> list[EntityLoad]:
    """Ingest several sources; every source is tried, then all rejections are raised together."""
    results: list[EntityLoad] = []
    rejected: list[SourceRejected] = []
    for source in sources:
        entities_of(source)  # validates the name
        try:
            results.extend(ingest_source(settings, run_date, source))
        except SourceRejected as exc:
            log.error("%s", exc)
            rejected.append(exc)
    if rejected:
        raise SourceRejected(
            ",".join(r.source for r in rejected), run_date, [p for r in rejected for p in r.problems]
        )
    return results
