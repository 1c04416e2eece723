"""Ingestion of one night's drop into the raw lake, in bounded memory.

Per landing file, streamed in batches (``pipelines/intake/readers.py``): every value is read as
text, typed and checked per the contract in DuckDB (``pipelines/intake/row_checks.py``); rows with
row-level defects go to the quarantine (file, line, column, value, reason, the whole record
as JSON), valid rows are written as Parquet into the night's partition of the raw lake
(``pipelines/intake/lake.py``) with load metadata. Memory is bounded by one batch plus DuckDB's
``memory_limit`` for the few whole-file steps (the duplicate-key scan, the dedup of usage
events against other nights, a re-sort), which spill to ``temp_dir`` beyond it.

* A key repeated inside one file with different content quarantines every copy; an exact
  repeat (same typed values) is loaded once and counted as deduplicated.
* Usage events are kept once across drops, under the earliest drop that held them,
  whatever order the drops are ingested in. Only the partitions and row groups that can hold
  the same events are read: an event is delivered on or after the day it occurred (a
  future-dated one is quarantined beyond the tolerance), and a re-delivered event keeps its
  ``occurred_at``, so the other nights' row groups outside this drop's time range are
  skipped by their Parquet statistics.
* Re-ingesting a run date replaces that date's partitions of the source, atomically, and the
  load audit (``<lake>/raw/_load_audit``) records what happened to every file. Ingestion
  never opens the DuckDB warehouse, so the sources of a night can load in parallel.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines import warehouse
from pipelines.contract import CARRIED_FORWARD_COLUMN, SOURCES, Entity, entities_of
from pipelines.intake import lake
from pipelines.intake.landing import (
    FileProblem,
    LandingFile,
    SourceRejected,
    find_files,
    off_entity_files,
)
from pipelines.intake.readers import LINE, FileUnreadable, Malformed, TextReader, typed_columns
from pipelines.intake.row_checks import BAD, KEY_HASH, RowChecks, key_sql, lit, q
from pipelines.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Arrow type each contract type is written as (Parquet types Spark 4 reads).
ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "integer": pa.int64(),
    "decimal": pa.decimal128(18, 2),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
}
#: Rows per Parquet file of a partition (a first drop of a year of events spans several).
ROWS_PER_FILE = 16 << 20
#: Re-sort an events partition whose row groups' time ranges add up to more than this many
#: times the partition's whole range (an export in random order defeats the pruning).
MAX_TIME_OVERLAP = 8.0
_PARQUET_OPTIONS = {"compression": "zstd", "store_decimal_as_integer": True}
#: Batches parsed ahead of the row checks (a reader thread keeps the second core busy).
PREFETCH_BATCHES = 2
_COPY_OPTIONS = f"format parquet, compression zstd, row_group_size {lake.EVENTS_ROW_GROUP}"


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
    #: Optional contract columns the file left out: the mart uses their documented defaults.
    columns_defaulted: tuple[str, ...] = ()
    #: Snapshot rows quarantined tonight whose key keeps its row of the previous drop.
    rows_carried_forward: int = 0


def output_schema(entity: Entity, extra: list[str]) -> pa.Schema:
    """Columns of an entity's lake files: contract (typed), extras (text), load metadata (and,
    for a snapshot, ``_carried_forward_from``: null for the rows the night delivered)."""
    fields = [(c.name, ARROW_TYPES[c.type]) for c in entity.columns]
    fields += [(name, pa.string()) for name in extra]
    fields += [("_source_file", pa.string()), ("_source_line", pa.int64()), ("_loaded_at", pa.timestamp("us"))]
    if entity.kind == "snapshot":
        fields.append((CARRIED_FORWARD_COLUMN, pa.date32()))
    return pa.schema(fields)


class _PartWriter:
    """Parquet files of one partition, rolled every ROWS_PER_FILE rows."""

    def __init__(self, directory: Path, schema: pa.Schema, load_id: str):
        self.directory, self.schema, self.load_id = directory, schema, load_id
        self.files: list[Path] = []
        self._writer: pq.ParquetWriter | None = None
        self._rows_in_file = 0

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        if self._writer is None or self._rows_in_file >= ROWS_PER_FILE:
            self._open()
        assert self._writer is not None
        self._writer.write_table(table, row_group_size=1 << 20)
        self._rows_in_file += table.num_rows

    def _open(self) -> None:
        if self._writer is not None:
            self._writer.close()
        path = self.directory / lake.part_file_name(self.load_id, len(self.files))
        self._writer = pq.ParquetWriter(path, self.schema, **_PARQUET_OPTIONS, **_encodings(self.schema))
        self.files.append(path)
        self._rows_in_file = 0

    def close(self) -> list[Path]:
        if self._writer is None:
            self._open()  # an empty partition still says "this night delivered nothing"
        assert self._writer is not None
        self._writer.close()
        return self.files


def _encodings(schema: pa.Schema) -> dict[str, list[str]]:
    """Dictionary-encode the text columns that repeat (not a key, not unique per row) and keep
    min/max statistics on the typed columns: a dictionary attempt on a unique column or
    statistics on long text cost a third of the write time and buy nothing."""
    dictionary = [f.name for f in schema if pa.types.is_string(f.type) and not f.name.endswith("_id")]
    dictionary += ["account_id", "user_id", "_loaded_at"]
    dictionary = [n for n in dict.fromkeys(dictionary) if n in schema.names]
    statistics = [f.name for f in schema if not pa.types.is_string(f.type)]
    # Integers and timestamps (line numbers, event times) delta-encode smaller and faster.
    delta = {f.name: "DELTA_BINARY_PACKED" for f in schema
             if (pa.types.is_int64(f.type) or pa.types.is_timestamp(f.type)) and f.name not in dictionary}
    return {"use_dictionary": dictionary, "write_statistics": statistics, "column_encoding": delta}


def _prefetch(items: Iterator[T], depth: int = PREFETCH_BATCHES) -> Iterator[T]:
    """Iterate ``items`` in a background thread, ``depth`` ahead (pyarrow's parser and
    DuckDB release the GIL, so reading and checking overlap on two cores)."""
    done = object()
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        buffer.put(item, timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put(done)
        except BaseException as exc:  # handed to the consumer
            buffer.put(exc)

    worker = threading.Thread(target=produce, name="segment-mart-reader", daemon=True)
    worker.start()
    try:
        while True:
            item = buffer.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join(timeout=10)


_WHITESPACE = np.array([9, 10, 11, 12, 13, 32], dtype=np.uint8)


def _needs_trim(array: pa.Array) -> bool:
    """Does any value start or end with ASCII whitespace? (Its first and last bytes, gathered
    from the offsets: far cheaper than trimming every value.)"""
    if array.null_count == len(array):
        return False
    _, offsets, data = array.buffers()
    if data is None or offsets is None:
        return False
    ends = np.frombuffer(offsets, dtype=np.int32, count=len(array) + 1, offset=array.offset * 4)
    starts, stops = ends[:-1], ends[1:]
    filled = stops > starts
    raw = np.frombuffer(data, dtype=np.uint8)
    edges = np.concatenate((raw[starts[filled]], raw[stops[filled] - 1]))
    return bool(np.isin(edges, _WHITESPACE).any())


def _prepare(batch: pa.RecordBatch, names: tuple[str, ...], missing: list[str], skip_blank: bool) -> pa.Table:
    """Text columns trimmed (ASCII whitespace), empty text as null, absent optional columns
    as null; blank CSV records (every field empty) dropped."""
    columns: dict[str, pa.Array] = {n: batch.column(n) for n in batch.schema.names if n != LINE}
    for name in names:
        array = batch.column(name)
        if _needs_trim(array):
            array = pc.ascii_trim_whitespace(array)
        if array.null_count < len(array) and pc.min(pc.binary_length(array)).as_py() == 0:
            array = pc.if_else(pc.equal(pc.binary_length(array), 0), pa.scalar(None, pa.string()), array)
        columns[name] = array
    n = batch.num_rows
    for name in missing:
        columns[name] = pa.nulls(n, pa.string())
    columns[LINE] = batch.column(LINE)
    table = pa.table(columns)
    if skip_blank and names and columns[names[0]].null_count:
        blank = pc.is_null(columns[names[0]])
        for name in names[1:]:
            blank = pc.and_(blank, pc.is_null(columns[name]))
        if pc.any(blank).as_py():
            table = table.filter(pc.invert(blank))
    return table


def _scalar_column(value: object, kind: pa.DataType, n: int) -> pa.Array:
    return pa.repeat(pa.scalar(value, kind), n)


class _EntityLoader:
    """Loads one landing file into a staged partition; the caller commits or discards it."""

    def __init__(self, settings: Settings, con, lf: LandingFile, run_date: dt.date, load_id: str,
                 loaded_at: dt.datetime, commit: lake.Commit, quarantine_dir: Path):
        self.settings, self.con, self.lf = settings, con, lf
        self.entity = lf.entity
        self.run_date, self.load_id, self.loaded_at = run_date, load_id, loaded_at
        self.commit = commit
        contract = {c.name for c in self.entity.columns}
        self.extra = [c for c in lf.columns if c not in contract]
        self.missing = [c.name for c in self.entity.columns if c.name not in lf.columns]
        self.schema = output_schema(self.entity, self.extra)
        self.typed_input = typed_columns(lf)
        self.checks = RowChecks(
            self.entity, lf.columns, run_date=run_date,
            future_tolerance_hours=settings.future_event_tolerance_hours, check_nul=lf.has_nul,
            typed_input=self.typed_input, **(lf.mapping.row_check_options() if lf.mapping else {}),
        )
        self.partition = commit.stage(lake.partition_dir(settings.lake, self.entity, run_date), load_id)
        self.quarantine_path = quarantine_dir / f"{self.entity.name}-{load_id}.parquet"
        scratch = settings.temp / "ingest"
        scratch.mkdir(parents=True, exist_ok=True)
        self.keys_path = scratch / f"{load_id}-{self.entity.source}-{self.entity.name}-keys.parquet"

    # ---------------------------------------------------------------- pass 1: stream the file

    def load(self) -> EntityLoad:
        started = time.monotonic()
        reader = TextReader(self.lf)
        out = _PartWriter(self.partition, self.schema, self.load_id)
        quarantine = pq.ParquetWriter(self.quarantine_path, lake.QUARANTINE_SCHEMA, compression="zstd")
        keys = pq.ParquetWriter(self.keys_path, pa.schema([("h", pa.uint64()), ("line", pa.int64()),
                                                           ("bad", pa.bool_())]), compression="none")
        rows_read = 0
        try:
            try:
                self.con.execute("set preserve_insertion_order = true")  # per batch: rows in batch order
                skip_blank = self.lf.file_format == "csv" and self.lf.mapping is None
                text = tuple(c for c in self.lf.columns if c not in self.typed_input)
                prepared = (_prepare(b, text, self.missing, skip_blank) for b in reader.batches(self.con.cursor()))
                for table in _prefetch(prepared):
                    rows_read += table.num_rows
                    if table.num_rows:
                        self._check_and_write(table, out, quarantine, keys)
                    if rows_read and rows_read % (4 << 20) < table.num_rows:
                        log.info("%s: %s rows read", self.lf.path, f"{rows_read:,}")
                if reader.malformed:
                    n = len(reader.malformed)
                    quarantine.write_table(pa.table({
                        "entity": [self.entity.name] * n, "file": [str(self.lf.path)] * n,
                        "line": [m.line for m in reader.malformed], "column_name": ["(row)"] * n,
                        "value": pa.nulls(n, pa.string()),
                        "reason": [f"malformed CSV record: {m.message}" for m in reader.malformed],
                        "record": [_json({"csv_line": m.text}) for m in reader.malformed],
                    }, schema=lake.QUARANTINE_SCHEMA))
                    rows_read += n
            finally:
                self.con.execute(
                    f"set preserve_insertion_order = {str(self.settings.duckdb_preserve_insertion_order).lower()}"
                )
                out.close()
                keys.close()
                quarantine.close()
            self._resolve_duplicates()
            if self.entity.kind == "events":
                self._dedup_across_drops()
                self._cluster_by_time()
            loaded = sum(pq.ParquetFile(p).metadata.num_rows for p in self.partition.glob("*.parquet"))
            carried = self._carry_forward(reader.malformed) if self.entity.kind == "snapshot" else 0
        finally:
            self.keys_path.unlink(missing_ok=True)
        quarantined = self.con.execute(
            f"select count(distinct line) from read_parquet({lit(str(self.quarantine_path))})"
        ).fetchall()[0][0]
        return EntityLoad(self.entity.source, self.entity.name, str(self.lf.path), rows_read, loaded,
                          quarantined, rows_read - loaded - quarantined, round(time.monotonic() - started, 3),
                          columns_defaulted=tuple(self.missing), rows_carried_forward=carried)

    def _check_and_write(self, table: pa.Table, out: _PartWriter, quarantine: pq.ParquetWriter,
                         keys: pq.ParquetWriter) -> None:
        self.con.register("__sm_batch", table)
        try:
            with_nulls = {name for name in table.column_names if table.column(name).null_count}
            typed = self.con.sql(self.checks.typed_sql("__sm_batch", with_nulls)).to_arrow_table()
            bad = typed.column(BAD)
            has_bad = bad.true_count if hasattr(bad, "true_count") else pc.sum(bad).as_py()
            if has_bad:
                self.con.register("__sm_bad_rows", table.filter(bad))
                failures = self.con.sql(self.checks.failures_sql("__sm_bad_rows")).to_arrow_table()
                self.con.unregister("__sm_bad_rows")
                n = failures.num_rows
                quarantine.write_table(pa.table({
                    "entity": _scalar_column(self.entity.name, pa.string(), n),
                    "file": _scalar_column(str(self.lf.path), pa.string(), n),
                    "line": failures.column("line"), "column_name": failures.column("column_name"),
                    "value": failures.column("value"), "reason": failures.column("reason"),
                    "record": failures.column("record"),
                }, schema=lake.QUARANTINE_SCHEMA))
        finally:
            self.con.unregister("__sm_batch")
        hashes = typed.column(KEY_HASH)
        key_rows = pa.table({"h": hashes, "line": table.column(LINE), "bad": bad})
        keys.write_table(key_rows.filter(pc.is_valid(hashes)) if hashes.null_count else key_rows)
        n = table.num_rows
        arrays = [table.column(c.name) if c.type == "string" else typed.column(c.name) for c in self.entity.columns]
        arrays += [table.column(name) for name in self.extra]
        arrays += [
            _scalar_column(str(self.lf.path), pa.string(), n),
            table.column(LINE),
            _scalar_column(self.loaded_at, pa.timestamp("us"), n),
        ]
        if self.entity.kind == "snapshot":
            arrays.append(pa.nulls(n, pa.date32()))
        rows = pa.Table.from_arrays([a.cast(f.type) for a, f in zip(arrays, self.schema, strict=True)],
                                    schema=self.schema)
        if has_bad:
            rows = rows.filter(pc.invert(bad))
        out.write(rows)

    # ---------------------------------------------------------------- pass 2: whole-file steps

    def _files(self) -> list[Path]:
        return sorted(self.partition.glob("*.parquet"))

    def _rewrite(self, select_sql: str) -> None:
        """Replace the staged partition's files by the rows of ``select_sql`` (over ``__sm_part``)."""
        files = self._files()
        target = self.partition / lake.part_file_name(self.load_id, 90_000 + len(files))
        self.con.execute(
            f"copy (select * from (select * from read_parquet({lake.files_sql(files)})) as __sm_part "
            f"{select_sql}) to {lit(str(target))} ({_COPY_OPTIONS})"
        )
        for path in files:
            path.unlink()
        final = self.partition / lake.part_file_name(self.load_id, 0)
        target.rename(final)

    def _resolve_duplicates(self) -> None:
        keys = lit(str(self.keys_path))
        self.con.execute(
            f"create or replace temp table __sm_candidates as "
            f"select h from read_parquet({keys}) group by h having count(*) > 1"
        )
        if not self.con.execute("select count(*) from __sm_candidates").fetchall()[0][0]:
            return
        key = key_sql(self.entity)
        content = "hash(row(" + ", ".join(q(c.name) for c in self.entity.columns) + "".join(
            f", {q(e)}" for e in self.extra) + "))"
        record = "to_json(struct_pack(" + ", ".join(
            f"{q(c)} := {q(c)}" for c in self.lf.columns) + "))::varchar"
        files = lake.files_sql(self._files())
        qpath = lit(str(self.quarantine_path))
        self.con.execute(f"""
            create or replace temp table __sm_copies as
            select _source_line as line, {key} as key, {content} as content, false as bad, {record} as record
            from read_parquet({files}) where hash({key}) in (select h from __sm_candidates)
            union all
            select distinct line, {key_sql(self.entity, lambda c: f"json_extract_string(record, {lit('$.' + _json(c))})")},
                null::ubigint, true, record
            from read_parquet({qpath})
            where line in (select line from read_parquet({keys}) where bad and h in (select h from __sm_candidates))
        """)
        self.con.execute("""
            create or replace temp table __sm_dups as
            with keyed as (
                select key, count(distinct content) > 1 or bool_or(bad) as is_conflict, min(line) as first_line
                from __sm_copies group by key having count(*) > 1
            )
            select c.line, c.key, c.bad, c.record, k.is_conflict, k.first_line,
                row_number() over (partition by c.key, c.content order by c.line) as copy_number
            from __sm_copies c inner join keyed k using (key)
        """)
        reason = (f"'duplicate key {self.entity.key} ' || key || ' with different content in this file "
                  f"(first on line ' || first_line || ')'")
        extra = self.con.sql(f"""
            select {lit(self.entity.name)} as entity, {lit(str(self.lf.path))} as file, line,
                {lit(self.entity.key)} as column_name, key as value, {reason} as reason, record
            from __sm_dups where is_conflict
        """).to_arrow_table()
        if extra.num_rows:
            existing = pq.read_table(self.quarantine_path)
            pq.write_table(pa.concat_tables([existing, extra.cast(lake.QUARANTINE_SCHEMA)]),
                           self.quarantine_path, compression="zstd")
        drop = "select line from __sm_dups where not bad and (is_conflict or copy_number > 1)"
        if self.con.execute(f"select count(*) from ({drop})").fetchall()[0][0]:
            self._rewrite(f"where _source_line not in ({drop})")

    # ---------------------------------------------------------------- carry forward (snapshots)

    def _quarantined_keys(self, malformed: list[Malformed]) -> set[str]:
        """Keys of the rows quarantined from this file: from each quarantined record, and from a
        malformed CSV record's text when its key field can be read (by the header's position)."""
        path = lit("$." + _json(self.entity.key))
        found = self.con.execute(
            f"select distinct trim(json_extract_string(record, {path})) from read_parquet({lit(str(self.quarantine_path))})"
        ).fetchall()
        keys = {k for (k,) in found if k}
        position = self.lf.columns.index(self.entity.key)
        for record in malformed:
            fields = next(csv.reader(io.StringIO(record.text)), [])
            if len(fields) > position and fields[position].strip():
                keys.add(fields[position].strip())
        return keys

    def _carry_forward(self, malformed: list[Malformed]) -> int:
        """A snapshot row quarantined tonight is a row's trouble, not the key's: the key keeps its
        row of the latest earlier drop, copied into tonight's partition with
        ``_carried_forward_from`` (the run date of the drop that delivered it; a row carried night
        after night keeps its first date), so the account, its subscription, case or invoice does
        not vanish from the night's marts (a tier history would break and restart). Keys without
        an earlier row (a new account) and keys loaded tonight anyway are not carried. Returns the
        rows carried. Both engines read the same lake, so the carried rows are the same for both."""
        keys = self._quarantined_keys(malformed)
        earlier = [d for d in lake.partition_dates(self.settings.lake, self.entity) if d < self.run_date]
        files = lake.partition_files(self.settings.lake, self.entity, earlier[-1]) if earlier else []
        if not keys or not files:
            return 0
        previous = earlier[-1]
        key = q(self.entity.key)
        self.con.register("__sm_carry_keys", pa.table({"key": pa.array(sorted(keys), pa.string())}))
        try:
            relation = f"read_parquet({lake.files_sql(files)}, union_by_name = true)"
            names = {r[0] for r in self.con.execute(f"describe select * from {relation}").fetchall()}
            since = f"date '{previous.isoformat()}'"
            if CARRIED_FORWARD_COLUMN in names:
                since = f"coalesce({q(CARRIED_FORWARD_COLUMN)}, {since})"
            rows = self.con.sql(f"""
                select * exclude ({q(CARRIED_FORWARD_COLUMN)}), {since} as {q(CARRIED_FORWARD_COLUMN)}
                from (select * {'' if CARRIED_FORWARD_COLUMN in names else f', null::date as {q(CARRIED_FORWARD_COLUMN)}'}
                      from {relation}) as previous
                where {key} in (select key from __sm_carry_keys)
                  and {key} not in (select {key} from read_parquet({lake.files_sql(self._files())}))
                order by {key}
            """).to_arrow_table()
        finally:
            self.con.unregister("__sm_carry_keys")
        if rows.num_rows:
            target = self.partition / lake.part_file_name(self.load_id, 80_000)
            pq.write_table(rows, target, **_PARQUET_OPTIONS)
            log.warning("%s: %d quarantined row(s) keep their row of the drop of %s (carried forward): %s",
                        self.lf.path, rows.num_rows, previous,
                        ", ".join(str(k) for k in rows.column(self.entity.key).to_pylist()[:20]))
        return rows.num_rows

    def _time_range(self) -> tuple[dt.datetime, dt.datetime] | None:
        lo = hi = None
        for path in self._files():
            meta = pq.ParquetFile(path).metadata
            index = meta.schema.to_arrow_schema().get_field_index("occurred_at")
            for g in range(meta.num_row_groups):
                stats = meta.row_group(g).column(index).statistics
                if stats is None or not stats.has_min_max:
                    return None
                lo = stats.min if lo is None else min(lo, stats.min)
                hi = stats.max if hi is None else max(hi, stats.max)
        return None if lo is None else (lo, hi)

    def _dedup_across_drops(self) -> None:
        span = self._time_range()
        if span is None:
            return
        lo, hi = span
        key = q(self.entity.key)
        # An event is delivered on or after the day it occurred (less the future tolerance).
        slack = dt.timedelta(hours=self.settings.future_event_tolerance_hours) + dt.timedelta(days=1)
        earliest = (lo - slack).date()
        dates = lake.partition_dates(self.settings.lake, self.entity)
        window = f"occurred_at between {lit(lo.isoformat(sep=' '))}::timestamp and {lit(hi.isoformat(sep=' '))}::timestamp"
        new = lake.files_sql(self._files())
        earlier = [f for d in dates if earliest <= d < self.run_date
                   for f in lake.partition_files(self.settings.lake, self.entity, d)]
        if earlier:
            self.con.execute(f"""
                create or replace temp table __sm_seen as
                select {key} as key from read_parquet({lake.files_sql(earlier)}) where {window}
                intersect
                select {key} from read_parquet({new})
            """)
            count = self.con.execute("select count(*) from __sm_seen").fetchall()[0][0]
            if count:
                log.info("%s: %d events were delivered by an earlier drop", self.lf.path, count)
                self._rewrite(f"where {key} not in (select key from __sm_seen)")
        for later in (d for d in dates if d > self.run_date):
            files = lake.partition_files(self.settings.lake, self.entity, later)
            if not files:
                continue
            self.con.execute(f"""
                create or replace temp table __sm_later as
                select {key} as key from read_parquet({lake.files_sql(files)}) where {window}
                intersect
                select {key} from read_parquet({lake.files_sql(self._files())})
            """)
            count = self.con.execute("select count(*) from __sm_later").fetchall()[0][0]
            if not count:
                continue
            log.info("%s: %d events move from the drop of %s to this earlier drop", self.lf.path, count, later)
            target = lake.partition_dir(self.settings.lake, self.entity, later)
            staged = self.commit.stage(target, self.load_id)
            keep_id = lake.load_id_of(files[0]) or self.load_id  # the later load stays that load
            self.con.execute(
                f"copy (select * from read_parquet({lake.files_sql(files)}) "
                f"where {key} not in (select key from __sm_later)) "
                f"to {lit(str(staged / lake.part_file_name(keep_id, 0)))} ({_COPY_OPTIONS})"
            )

    def _cluster_by_time(self) -> None:
        """Re-sort the partition by occurred_at when its row groups' time ranges overlap a lot."""
        spans: list[tuple[dt.datetime, dt.datetime]] = []
        for path in self._files():
            meta = pq.ParquetFile(path).metadata
            index = meta.schema.to_arrow_schema().get_field_index("occurred_at")
            for g in range(meta.num_row_groups):
                stats = meta.row_group(g).column(index).statistics
                if stats is not None and stats.has_min_max:
                    spans.append((stats.min, stats.max))
        if len(spans) < 4:
            return
        whole = (max(s[1] for s in spans) - min(s[0] for s in spans)).total_seconds()
        covered = sum((s[1] - s[0]).total_seconds() for s in spans)
        if whole <= 0 or covered / whole <= MAX_TIME_OVERLAP:
            return
        log.info("%s: events are not in time order (row groups overlap %.0fx); sorting the partition",
                 self.lf.path, covered / whole)
        self._rewrite("order by occurred_at")


def _json(value: object) -> str:
    import json

    return json.dumps(value)


def _write_audit(settings: Settings, run_date: dt.date, source: str, rows: list[dict], load_id: str,
                 commit: lake.Commit) -> None:
    directory = commit.stage(lake.audit_dir(settings.lake, run_date, source), load_id)
    pq.write_table(pa.Table.from_pylist(rows, schema=lake.AUDIT_SCHEMA), directory / f"audit-{load_id}.parquet", compression="zstd")


def _failed_rows(problems: list[FileProblem], load_id: str, loaded_at: dt.datetime) -> list[dict]:
    return [
        {"entity": p.path.name.split(".")[0], "file": str(p.path), "rows_read": 0, "rows_loaded": 0,
         "rows_quarantined": 0, "rows_deduplicated": 0, "duration_seconds": 0.0, "status": "failed",
         "error": f"{p.problem}. {p.action}", "load_id": load_id, "loaded_at": loaded_at}
        for p in problems
    ]


def _off_rows(drop: Path, source: str, settings: Settings, load_id: str, loaded_at: dt.datetime) -> list[dict]:
    """Audit rows of the source's entities that are not in use (status ``off``): nothing of
    them is read, a file delivered anyway included (named, so nobody wonders why it was ignored)."""
    rows = []
    for entity, path in off_entity_files(drop, source, settings.in_use).items():
        if path is not None:
            log.warning("%s: %s is not in use (SEGMENT_MART_ENTITIES_IN_USE): the file is not loaded",
                        path, entity.qualified)
        note = ("not in use (SEGMENT_MART_ENTITIES_IN_USE): "
                + ("the file delivered was not read" if path is not None else "no file expected"))
        rows.append({"entity": entity.name, "file": str(path) if path is not None else None, "rows_read": 0,
                     "rows_loaded": 0, "rows_quarantined": 0, "rows_deduplicated": 0, "duration_seconds": 0.0,
                     "status": "off", "error": note, "load_id": load_id, "loaded_at": loaded_at,
                     "columns_defaulted": None, "rows_carried_forward": 0})
    return rows


def _reject(settings: Settings, run_date: dt.date, source: str, problems: list[FileProblem],
            load_id: str, loaded_at: dt.datetime) -> SourceRejected:
    """Record the failed files in the audit (the source's data partitions stay as they were)."""
    commit = lake.Commit()
    with commit.atomically():
        _write_audit(settings, run_date, source, _failed_rows(problems, load_id, loaded_at), load_id, commit)
        commit.commit()
    return SourceRejected(source, run_date, problems)


def ingest_source(settings: Settings, run_date: dt.date, source: str) -> list[EntityLoad]:
    """Load one source of one night's drop into the raw lake; replaces that run date's
    partitions of the source (atomically, per partition; the audit last).

    Raises SourceRejected (and changes nothing but the audit) on file-level defects.
    Callers that may run concurrently take the source's lock (``pipelines/ops/nightly.py``).
    """
    from pipelines.intake.mapping import active_mappings

    lake.recover_source(settings.lake, source)
    drop = settings.drop_dir(run_date)
    files, problems = find_files(drop, source, settings.in_use, active_mappings(settings))
    loaded_at = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    load_id = lake.new_load_id(run_date)
    if problems:
        raise _reject(settings, run_date, source, problems, load_id, loaded_at)
    results: list[EntityLoad] = []
    commit = lake.Commit()
    con = warehouse.in_memory(settings)
    try:
        with commit.atomically():
            qdir = commit.stage(lake.quarantine_dir(settings.lake, run_date, source), load_id)
            for lf in files:
                try:
                    result = _EntityLoader(settings, con, lf, run_date, load_id, loaded_at, commit, qdir).load()
                except FileUnreadable as exc:
                    problem = FileProblem(lf.path, str(exc), "Fix or re-export the file, then re-run the ingest.")
                    raise _reject(settings, run_date, source, [problem], load_id, loaded_at) from exc
                log.info(
                    "%s/%s %s: read %d, loaded %d, quarantined %d, deduplicated %d in %.1fs",
                    result.source, result.entity, run_date, result.rows_read, result.rows_loaded,
                    result.rows_quarantined, result.rows_deduplicated, result.duration_seconds,
                )
                results.append(result)
            rows = [
                {"entity": r.entity, "file": r.file, "rows_read": r.rows_read, "rows_loaded": r.rows_loaded,
                 "rows_quarantined": r.rows_quarantined, "rows_deduplicated": r.rows_deduplicated,
                 "duration_seconds": r.duration_seconds, "status": "loaded", "error": None,
                 "load_id": load_id, "loaded_at": loaded_at,
                 "columns_defaulted": ",".join(r.columns_defaulted) or None,
                 "rows_carried_forward": r.rows_carried_forward}
                for r in results
            ]
            rows += _off_rows(drop, source, settings, load_id, loaded_at)
            _write_audit(settings, run_date, source, rows, load_id, commit)  # staged last: commits last
            commit.commit()
    finally:
        con.close()
    return results


def ingest(settings: Settings, run_date: dt.date, sources: Iterable[str] = SOURCES,
           load: Callable[[Settings, dt.date, str], list[EntityLoad]] | None = None) -> list[EntityLoad]:
    """Ingest several sources; every source is tried, then all rejections are raised together.
    ``load`` loads one source (default :func:`ingest_source`; the night passes its own, which
    holds the home's run lock)."""
    load = load or ingest_source
    results: list[EntityLoad] = []
    rejected: list[SourceRejected] = []
    for source in sources:
        entities_of(source)  # validates the name
        try:
            results.extend(load(settings, run_date, source))
        except SourceRejected as exc:
            log.error("%s", exc)
            rejected.append(exc)
    if rejected:
        raise SourceRejected(
            ",".join(r.source for r in rejected), run_date, [p for r in rejected for p in r.problems]
        )
    return results

