"""Typing and row-level checks of one entity, as DuckDB SQL over a batch of text columns.

The loader runs two queries per batch (``pipelines/intake/ingest.py``):

* :meth:`RowChecks.typed_sql` returns, in batch order, the typed value of every non-text
  contract column, ``BAD`` (true when any check fails) and ``KEY_HASH`` (for the duplicate
  scan). Text columns never pass through DuckDB on this path: the loader keeps them as Arrow
  arrays, already trimmed, with empty values as null.
* :meth:`RowChecks.failures_sql` runs on the few bad rows only and gives one row per failed
  (line, column, reason) with the failing value and the whole record as JSON.
"""

from __future__ import annotations

import datetime as dt
import re

from pipelines.contract import BOOLEAN_FALSE, BOOLEAN_TRUE, DUCKDB_TYPES, Column, Entity
from pipelines.intake.readers import LINE

BAD = "__sm_bad"
KEY_HASH = "__sm_key_hash"
#: Timestamps in the contract's canonical form parse with strptime (fast); anything else
#: (an ISO 8601 'T', fractions, an offset) goes through timestamptz, which converts offsets
#: to UTC (the session time zone is UTC).
CANONICAL_TIMESTAMP = "%Y-%m-%d %H:%M:%S"


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def key_sql(entity: Entity, column_sql=lambda c: q(c)) -> str:
    """The entity's key as one text value: the key column, or for a composite key its columns
    as text joined by '|' (empty for null). ``column_sql`` gives each column's SQL."""
    if len(entity.key_columns) == 1:
        return column_sql(entity.key)
    return "concat_ws('|', " + ", ".join(
        f"coalesce(cast({column_sql(c)} as varchar), '')" for c in entity.key_columns) + ")"


def typed_name(column: str) -> str:
    return f"__sm_t_{column}"


def typed_expr(column: Column, typed_input: bool = False) -> str:
    """SQL typing one (trimmed, empty-as-null) text column per the contract; a column that
    arrives typed (Parquet) is cast, with the same checks after."""
    raw = q(column.name)
    if column.type == "string":
        return raw
    if typed_input:
        return f"try_cast({raw} as {DUCKDB_TYPES[column.type]})"
    if column.type == "timestamp":
        return (f"coalesce(try_strptime({raw}, '{CANONICAL_TIMESTAMP}'), "
                f"try_cast(try_cast({raw} as timestamptz) as timestamp))")
    if column.type == "boolean":  # the contract's spellings only, never more of DuckDB's
        true, false = (", ".join(lit(v) for v in values) for values in (BOOLEAN_TRUE, BOOLEAN_FALSE))
        return f"case when lower({raw}) in ({true}) then true when lower({raw}) in ({false}) then false end"
    return f"try_cast({raw} as {DUCKDB_TYPES[column.type]})"


class RowChecks:
    """The checks of one entity for one landing file's columns and one run date."""

    def __init__(
        self,
        entity: Entity,
        file_columns: tuple[str, ...],
        *,
        run_date: dt.date,
        future_tolerance_hours: float,
        check_nul: bool,
        typed_input: frozenset[str] = frozenset(),
        mapping_errors: dict[str, str] | None = None,
        record_sql: str | None = None,
    ):
        self.entity = entity
        #: a mapped export (pipelines/intake/mapping.py): per contract column, the column holding the
        #: mapping's reason when it could not convert the value; that reason replaces the column's
        #: other checks. ``record_sql``: the quarantine's record, the export's own record.
        self.mapping_errors = mapping_errors or {}
        self.custom_record_sql = record_sql
        self.typed_input = typed_input
        self.file_columns = file_columns
        self.future_limit = dt.datetime.combine(run_date + dt.timedelta(days=1), dt.time()) + dt.timedelta(
            hours=future_tolerance_hours
        )
        self.future_tolerance_hours = future_tolerance_hours
        self.run_date = run_date
        self.check_nul = check_nul

    # -- the conditions -------------------------------------------------------------------

    def _conditions(self, with_nulls: set[str] | None = None) -> list[tuple[str, str, str]]:
        """(column, condition, reason SQL) of every check. ``with_nulls``: the columns holding
        a null in this batch (None = any may); a required column without nulls needs no check,
        and DuckDB then never reads a text column that has no other check."""
        out: list[tuple[str, str, str]] = []
        for column in self.entity.columns:
            conditions = [c for c in self._column_conditions(column)
                          if with_nulls is None or c[1] != f"{q(column.name)} is null" or column.name in with_nulls]
            error = self.mapping_errors.get(column.name)
            if error:
                conditions = [(n, f"({cond}) and {q(error)} is null", r) for n, cond, r in conditions]
                conditions.append((column.name, f"{q(error)} is not null", q(error)))
            out += conditions
        names = {c.name for c in self.entity.columns}
        for rc in self.entity.row_checks:
            sql = re.sub(r"\b(\w+)\b", lambda m: typed_name(m[1]) if m[1] in names else m[1], rc.sql)
            out.append((rc.column, f"not coalesce({sql}, true)", lit(rc.reason)))
        if self.check_nul:
            for name in self.file_columns:
                out.append((name, f"contains({q(name)}, chr(0))",
                            lit("contains a NUL byte (\\x00): re-export the file without it")))
        return out

    def _column_conditions(self, column: Column) -> list[tuple[str, str, str]]:
        name, raw, typed = column.name, q(column.name), typed_name(column.name)
        text = f"{raw}::varchar"
        out: list[tuple[str, str, str]] = []
        if column.required:
            out.append((name, f"{raw} is null", lit("missing required value")))
        if column.type != "string":
            out.append((name, f"{raw} is not null and {typed} is null",
                        f"'unparseable {column.type} value ''' || {text} || ''''"))
        if column.allowed:
            allowed = ", ".join(lit(v) for v in column.allowed)
            out.append((name, f"{raw} is not null and lower({raw}) not in ({allowed})",
                        f"'value ''' || {raw} || ''' is not one of: {', '.join(column.allowed)}'"))
        if column.pattern:
            out.append((name, f"{raw} is not null and not regexp_full_match({raw}, {lit(column.pattern)})",
                        f"'value ''' || {raw} || ''' does not match {column.pattern}'"))
        if column.min_value is not None:
            out.append((name, f"{typed} < {column.min_value}",
                        f"'value ''' || {text} || ''' is below the minimum {column.min_value:g}'"))
        if column.max_value is not None:
            out.append((name, f"{typed} > {column.max_value}",
                        f"'value ''' || {text} || ''' is above the maximum {column.max_value:g}'"))
        if column.not_after_run_date:
            limit = self.future_limit.isoformat(sep=" ")
            out.append((name, f"{typed} > timestamp '{limit}'",
                        f"'value ''' || {text} || ''' is in the future: after {limit}, the end of the run date "
                        f"{self.run_date} plus the tolerance of {self.future_tolerance_hours:g} h "
                        "(SEGMENT_MART_FUTURE_EVENT_TOLERANCE_HOURS)'"))
        return out

    # -- the two queries --------------------------------------------------------------------

    def _typed_columns(self) -> str:
        return ", ".join(f"{typed_expr(c, c.name in self.typed_input)} as {typed_name(c.name)}"
                         for c in self.entity.columns)

    def typed_sql(self, relation: str, with_nulls: set[str] | None = None) -> str:
        """Per row, in order: the typed non-text columns, BAD, KEY_HASH (``with_nulls``: see
        :meth:`_conditions`)."""
        bad = " or ".join(f"coalesce({cond}, false)" for _, cond, _ in self._conditions(with_nulls)) or "false"
        outputs = [f"{typed_name(c.name)} as {q(c.name)}" for c in self.entity.columns if c.type != "string"]
        key = key_sql(self.entity)
        outputs += [f"({bad}) as {BAD}", f"case when {key} is not null then hash({key}) end as {KEY_HASH}"]
        return f"select {', '.join(outputs)} from (select *, {self._typed_columns()} from {relation})"

    def record_sql(self) -> str:
        """The whole record as JSON text (file columns, as read and trimmed; a mapped export's own record)."""
        if self.custom_record_sql:
            return self.custom_record_sql
        return ("to_json(struct_pack(" + ", ".join(f"{q(c)} := {q(c)}::varchar" for c in self.file_columns)
                + "))::varchar")

    def failures_sql(self, relation: str) -> str:
        """One row per failed check of the rows of ``relation``: line, column_name, value, reason, record."""
        failures = ", ".join(
            f"case when {cond} then {{'column_name': {lit(col)}, 'reason': {reason}}} end"
            for col, cond, reason in self._conditions()
        )
        value = "case __sm_f.column_name " + " ".join(
            f"when {lit(c)} then {q(c)}::varchar" for c in self.file_columns
        ) + " end"
        return f"""
            select {LINE} as line, __sm_f.column_name as column_name, {value} as value,
                __sm_f.reason as reason, __sm_record as record
            from (
                select *, unnest(list_filter([{failures}], lambda f: f is not null)) as __sm_f
                from (select *, {self._typed_columns()}, {self.record_sql()} as __sm_record from {relation})
            )"""
