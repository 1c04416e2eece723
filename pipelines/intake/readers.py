"""Streaming readers of landing files: Arrow batches of text, each record with its line.

Every reader yields record batches with one string column per file column (named as the
contract spells it, see ``LandingFile.columns``) plus ``LINE``: the physical line of the
file where the record starts (CSV: the header is line 1; JSON Lines and Parquet rows start
at 1). Memory stays bounded by one batch whatever the file's size.

* CSV (pyarrow's streaming reader): quoted fields may hold newlines; a record's line counts
  the newlines inside the records before it, and malformed records (wrong number of fields)
  are collected in ``malformed`` with their line, so the lines of the records after them stay
  right too. Records whose fields are all empty (blank lines) are skipped. CRLF, LF or a mix
  of both end a line; a UTF-8 byte-order mark is skipped with the header line.
  The reader runs single-threaded on purpose: pyarrow reports a malformed record's number
  only then (``InvalidRow.number`` is None with ``use_threads=True``); it parses ~5M rows/s
  on one core, and the row checks run in DuckDB on the other.
* JSON Lines: the file is cut into lines in large binary blocks (numpy), DuckDB extracts the
  columns of a whole block at once; a line that is not a JSON object rejects the file naming
  that line; blank lines are skipped.
* Parquet: row batches; a contract column whose Parquet type already fits (an integer, a
  timestamp, ...) is passed on typed and only cast, every other column is converted to
  text and goes through the same parsing and checks as CSV.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.errors import DataProblem

if TYPE_CHECKING:
    import duckdb

    from pipelines.intake.landing import LandingFile

#: Column holding each record's line (internal names start with ``__sm_``; files may not use them).
LINE = "__sm_line"
CSV_BLOCK_BYTES = 8 << 20  # ~100K rows: batches that stay in the CPU caches parse fastest
JSONL_BLOCK_BYTES = 16 << 20
PARQUET_BATCH_ROWS = 262_144
UTF8_BOM = b"\xef\xbb\xbf"


class FileUnreadable(DataProblem):
    """The file cannot be read as its format says; the message names where."""


@dataclass
class Malformed:
    """A record the parser could not split into the header's fields."""

    line: int
    text: str
    message: str


@dataclass
class TextReader:
    """Batches of one landing file as text; malformed records collected on the side."""

    landing_file: LandingFile
    malformed: list[Malformed] = field(default_factory=list)

    @property
    def names(self) -> tuple[str, ...]:
        return self.landing_file.columns

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([(n, pa.string()) for n in self.names] + [(LINE, pa.int64())])

    def batches(self, con: duckdb.DuckDBPyConnection) -> Iterator[pa.RecordBatch]:
        lf = self.landing_file
        if lf.mapping is not None:  # a tool's export, converted by its mapping (pipelines/intake/mapping.py)
            yield from lf.mapping.batches(con, self)
        elif lf.file_format == "csv":
            yield from _CsvLines(self).batches()
        elif lf.file_format == "jsonl":
            yield from _jsonl_batches(self, con)
        else:
            yield from _parquet_batches(self)


# --------------------------------------------------------------------------- CSV

_QUOTE, _COMMA, _CR, _LF = 34, 44, 13, 10
#: Quotes checked per vectorised step of :class:`QuoteScanner` (pairs of a clean open and close),
#: and bytes scanned per block (its arrays stay in the CPU caches).
_QUOTE_WINDOW = 1 << 12
_QUOTE_BLOCK = 1 << 18
#: Most malformed quotes one file reports (the night fails long before: each is a quarantined row).
MAX_QUOTE_PROBLEMS = 100_000


class QuoteScanner:
    """Finds the quotes that pyarrow's CSV parser would silently drop or keep in the wrong place.

    pyarrow's rules (``double_quote=True``, no escape character): a field that starts with ``"``
    is quoted; inside it ``""`` is one literal quote and a lone ``"`` ends the quoting; whatever
    follows up to the next comma or line end is then appended as plain text, any further ``"`` in
    it literal. So ``"Acme "Big" Corp"`` loads as ``Acme Big" Corp"``: altered, with no error. The
    contract (RFC 4180) says a quote inside a quoted value is doubled. This scanner follows the
    same rules over the raw bytes and reports every quote that ends a quoted field but is followed
    by something other than a comma, a line end or the end of the file; the reader quarantines the
    record holding it (``malformed CSV record``), so such a value is never loaded altered. A quote
    inside an unquoted field (``5" pipe``) loads as written and is not reported.

    Fed the file in chunks (the landing check's one pass over the file, ``pipelines/intake/landing.py``);
    a chunk without a quote costs one ``find``. Where quotes are many (an export that quotes every
    field) the common case, a quoted field opened at a field start and closed before a comma or a
    line end, is checked for a whole window of quotes at once with numpy; only the rest (doubled
    quotes, quotes inside plain text, malformed ones) is stepped through one quote at a time.
    """

    def __init__(self, first_field_offset: int = 0):
        self.first_field_offset = first_field_offset  # after a UTF-8 byte-order mark: 3
        self.in_quotes = False
        self.offset = 0  # file offset of the next byte fed
        self.tail = -1  # the last byte fed (checked with the next chunk: its next byte), -1: none
        self.before = _LF  # the byte before ``tail`` (the start of the file is a field start)
        self.skip_at = -1  # file offset of the second quote of a doubled pair split by a block edge
        self.problems: list[int] = []  # file offsets of malformed quotes

    def feed(self, chunk: bytes | bytearray | memoryview, has_quote: bool = True) -> None:
        """Scan the next bytes of the file (read only during the call: a reused buffer is fine);
        ``has_quote=False`` when the caller knows the chunk holds no quote (its memchr is cheaper)."""
        raw = np.frombuffer(chunk, dtype=np.uint8)
        n = len(raw)
        if not n:
            return
        if self.tail >= 0:
            self._quote(self.offset - 1, self.before, int(raw[0]), eof=False)
        if has_quote:
            self._scan(raw, self.offset, n - 1, self.tail if self.tail >= 0 else self.before)
        self.before = int(raw[n - 2]) if n >= 2 else (self.tail if self.tail >= 0 else self.before)
        self.tail = int(raw[n - 1])
        self.offset += n

    def finish(self) -> list[int]:
        """Scan the last byte; the file offsets of the malformed quotes, in order."""
        if self.tail >= 0:
            self._quote(self.offset - 1, self.before, -1, eof=True)
            self.tail = -1
        return self.problems

    def _quote(self, at: int, prev: int, nxt: int, *, eof: bool) -> None:
        """One byte at file offset ``at`` (the last of a chunk), stepped alone."""
        if self.tail != _QUOTE or at == self.skip_at:
            return
        if not self.in_quotes:
            self.in_quotes = prev in (_COMMA, _LF) or at == self.first_field_offset
        elif nxt == _QUOTE:
            self.skip_at = at + 1  # doubled: the next chunk's first byte is the pair's second quote
        else:
            if not (eof or nxt in (_COMMA, _CR, _LF)) and len(self.problems) < MAX_QUOTE_PROBLEMS:
                self.problems.append(at)
            self.in_quotes = False

    def _scan(self, raw: np.ndarray, base: int, limit: int, before: int) -> None:
        """Quotes at ``raw[:limit]`` (``raw[limit]`` is the next byte of the last), in blocks
        small enough for the CPU caches."""
        for lo in range(0, limit, _QUOTE_BLOCK):
            hi = min(limit, lo + _QUOTE_BLOCK)
            at = np.flatnonzero(raw[lo:hi] == _QUOTE)
            if not len(at):
                continue
            at += lo
            if base + at[0] == self.skip_at:
                at = at[1:]  # the second quote of a doubled pair whose first ended the last block
                if not len(at):
                    continue
            if not self.in_quotes and not len(at) % 2 and at[0] > 0 and base + at[0] != self.first_field_offset:
                # the common block: quoted fields opened at a field start, closed before a comma or a
                # line end, nothing else quoted (half the gathers of the stepping below)
                opened = raw[at[0::2] - 1]
                closed = raw[at[1::2] + 1]
                if (((opened == _COMMA) | (opened == _LF)).all()
                        and ((closed == _COMMA) | (closed == _LF) | (closed == _CR)).all()):
                    continue
            prev = raw[np.maximum(at - 1, 0)]
            if at[0] == 0:
                prev[0] = before
            nxt = raw[at + 1]
            starts = (prev == _COMMA) | (prev == _LF)
            if lo == 0 and base <= self.first_field_offset:
                starts |= base + at == self.first_field_offset
            closes = (nxt == _COMMA) | (nxt == _CR) | (nxt == _LF)
            self._step(at, nxt, starts, closes, base, hi)

    def _step(self, at: np.ndarray, nxt: np.ndarray, starts: np.ndarray, closes: np.ndarray,
              base: int, hi: int) -> None:
        n, k = len(at), 0
        while k < n:
            if not self.in_quotes:
                m = min((n - k) // 2, _QUOTE_WINDOW)
                if m:
                    clean = starts[k:k + 2 * m:2] & closes[k + 1:k + 2 * m:2]
                    if clean.all():
                        k += 2 * m
                        continue
                    first = int(np.argmin(clean))
                    if first:
                        k += 2 * first
                        continue
                self.in_quotes = bool(starts[k])  # a quote inside plain text is literal
                k += 1
            elif nxt[k] == _QUOTE:  # doubled: a literal quote, still quoted
                if at[k] + 1 < hi:
                    k += 2
                else:
                    self.skip_at = base + int(at[k]) + 1
                    k += 1
            else:
                if not closes[k] and len(self.problems) < MAX_QUOTE_PROBLEMS:
                    self.problems.append(base + int(at[k]))
                self.in_quotes = False
                k += 1


class _CsvLines:
    """Physical lines of CSV records, from pyarrow's record numbers and the newlines in values."""

    def __init__(self, reader: TextReader):
        self.reader = reader
        self.pending: list[tuple[int, str, str]] = []  # malformed (record number, text, message)
        self.next_record = 2  # record numbers count the header as 1
        self.next_line = 2
        problems = reader.landing_file.quote_problems
        self.quote_lines = np.array([line for line, _ in problems], dtype=np.int64)
        self.quote_text = dict(problems)

    def _invalid(self, row: object) -> str:
        number = getattr(row, "number", None)
        if number is None:  # only with use_threads=True, which this reader never sets
            raise FileUnreadable("the CSV parser did not report the record number of a malformed record")
        expected, actual = getattr(row, "expected_columns", "?"), getattr(row, "actual_columns", "?")
        self.pending.append((int(number), str(getattr(row, "text", "")),
                             f"expected {expected} fields, found {actual}"))
        return "skip"

    def batches(self) -> Iterator[pa.RecordBatch]:
        import pyarrow.csv as pacsv

        names = list(self.reader.names)
        read = pacsv.ReadOptions(
            use_threads=False, block_size=CSV_BLOCK_BYTES, skip_rows=1, column_names=names
        )
        parse = pacsv.ParseOptions(
            delimiter=",", quote_char='"', double_quote=True, escape_char=False,
            newlines_in_values=True, ignore_empty_lines=False, invalid_row_handler=self._invalid,
        )
        convert = pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names}, null_values=[""], strings_can_be_null=True,
            quoted_strings_can_be_null=True, check_utf8=False,  # landing checked UTF-8 with lines
        )
        try:
            stream = pacsv.open_csv(self.reader.landing_file.path, read_options=read,
                                    parse_options=parse, convert_options=convert)
            for batch in stream:
                if batch.num_rows:
                    yield self._with_lines(batch)
        except pa.ArrowInvalid as exc:
            raise FileUnreadable(f"could not be read as CSV ({str(exc).splitlines()[0]})") from exc
        self._flush_trailing()

    def _newlines(self, batch: pa.RecordBatch) -> np.ndarray:
        """Newlines inside each record's values (quoted line breaks)."""
        counts = np.zeros(batch.num_rows, dtype=np.int64)
        for column in batch.columns:
            data = column.buffers()[2]
            # A raw search of the column's bytes rules out almost every column at memory speed.
            if data is None or bytes(data).find(b"\n") < 0:
                continue
            counts += pc.fill_null(pc.count_substring(column, "\n"), 0).to_numpy(zero_copy_only=False)
        return counts

    def _with_lines(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        n = batch.num_rows
        base = self.next_record
        marks = np.array([p[0] for p in self.pending], dtype=np.int64)
        # Accepted row i is record base + i + (malformed records before it): with sorted
        # malformed numbers m_j, m_j - base - j is the accepted index they precede.
        thresholds = marks - base - np.arange(len(marks))
        records = base + np.arange(n) + np.searchsorted(thresholds, np.arange(n), side="right")
        last = int(records[-1])
        inside = int(np.searchsorted(marks, last, side="right"))
        span = last - base + 1
        newlines = np.zeros(span, dtype=np.int64)
        newlines[records - base] = self._newlines(batch)
        for number, text, _ in self.pending[:inside]:
            newlines[number - base] = text.count("\n")
        starts = self.next_line + np.concatenate(([0], np.cumsum(newlines + 1)[:-1]))
        for number, text, message in self.pending[:inside]:
            self.reader.malformed.append(Malformed(int(starts[number - base]), text, message))
        del self.pending[:inside]
        self.next_line = int(starts[-1] + newlines[-1] + 1)
        self.next_record = last + 1
        row_lines = starts[records - base]
        out = pa.RecordBatch.from_arrays([*batch.columns, pa.array(row_lines, pa.int64())], schema=self.reader.schema)
        if len(self.quote_lines):
            out = self._without_bad_quotes(out, row_lines, row_lines + newlines[records - base])
        return out

    def _without_bad_quotes(self, batch: pa.RecordBatch, first: np.ndarray, last: np.ndarray) -> pa.RecordBatch:
        """Records spanning a line with a malformed quote (QuoteScanner) go to ``malformed``:
        pyarrow parsed them, but altered (a lone quote dropped, the text after it appended)."""
        at = np.searchsorted(self.quote_lines, first, side="left")
        hit = np.minimum(at, len(self.quote_lines) - 1)
        bad = (at < len(self.quote_lines)) & (self.quote_lines[hit] <= last)
        if not bad.any():
            return batch
        for i in np.flatnonzero(bad):
            line = int(self.quote_lines[hit[i]])
            self.reader.malformed.append(Malformed(
                int(first[i]), self.quote_text[line],
                f"a quote inside a quoted value is not doubled (line {line}): it would load altered. "
                'Write a literal quote inside a quoted value as two quotes ("")'))
        return batch.filter(pa.array(~bad))

    def _flush_trailing(self) -> None:
        for number, text, message in sorted(self.pending):
            self.next_line += number - self.next_record  # records in between cannot exist
            self.reader.malformed.append(Malformed(self.next_line, text, message))
            self.next_line += text.count("\n") + 1
            self.next_record = number + 1
        self.pending.clear()


# --------------------------------------------------------------------------- JSON Lines


def _json_path(key: str) -> str:
    return "$." + json.dumps(key)


def jsonl_line_blocks(path: Path, con: duckdb.DuckDBPyConnection) -> Iterator[pa.Table]:
    """The non-blank lines of a JSON Lines file in large blocks: tables of the line's text
    (``__sm_j``) and its number (``LINE``). A line that does not start like a JSON object rejects
    the file naming it; a malformed object is found by the caller's parse
    (:func:`reject_first_bad_line` names it)."""
    line_no = 1
    carry = b""
    with path.open("rb") as fh:
        first = True
        while True:
            block = fh.read(JSONL_BLOCK_BYTES)
            if first and block.startswith(UTF8_BOM):
                block = block[len(UTF8_BOM):]
            first = False
            data = carry + block
            if not block:
                if not data:
                    break
                data += b"\n"  # the last line without a newline
                cut = len(data)
            else:
                cut = data.rfind(b"\n") + 1
                if cut == 0:
                    carry = data
                    continue
            carry = data[cut:]
            raw = np.frombuffer(data, dtype=np.uint8, count=cut)
            ends = np.flatnonzero(raw == 10)
            starts = np.concatenate(([0], ends[:-1] + 1))
            numbers = np.arange(line_no, line_no + len(ends), dtype=np.int64)
            line_no += len(ends)
            lengths = ends - starts
            last = raw[np.maximum(ends - 1, 0)]
            blank = (lengths == 0) | ((lengths == 1) & (last == 13))
            keep = ~blank
            offsets = np.concatenate(([0], ends + 1)).astype(np.int64)
            lines = pa.LargeStringArray.from_buffers(len(ends), pa.py_buffer(offsets.tobytes()), pa.py_buffer(data[:cut]))
            block_table = pa.table({"__sm_j": lines, LINE: pa.array(numbers)})
            if blank.any():
                block_table = block_table.filter(pa.array(keep))
            not_object = keep & (raw[np.minimum(starts, cut - 1)] != ord("{"))
            if not_object.any():
                con.register("__sm_jsonl", block_table)
                try:
                    reject_first_bad_line(con)
                finally:
                    con.unregister("__sm_jsonl")
            yield block_table
            if not block:
                break


def _jsonl_batches(reader: TextReader, con: duckdb.DuckDBPyConnection) -> Iterator[pa.RecordBatch]:
    """Whole lines in large blocks (:func:`jsonl_line_blocks`); one JSON parse per line (DuckDB's
    json_extract_string of every column at once). A line that is not a JSON object is looked for
    only when a block fails, to name it."""
    lf = reader.landing_file
    paths = "[" + ", ".join("'" + _json_path(k).replace("'", "''") + "'" for k in lf.file_columns) + "]"
    extract = ", ".join(f"__v[{i + 1}] as \"{n}\"" for i, n in enumerate(reader.names))
    for block_table in jsonl_line_blocks(lf.path, con):
        con.register("__sm_jsonl", block_table)
        try:
            try:
                table = con.sql(
                    f"select {extract}, {LINE} from (select json_extract_string(__sm_j, {paths}) as __v, {LINE} "
                    "from __sm_jsonl)"
                ).to_arrow_table()
            except duckdb_error() as exc:  # a malformed line: find it to name it
                reject_first_bad_line(con)
                raise FileUnreadable(f"could not be read as JSONL ({str(exc).splitlines()[0]})") from exc
        finally:
            con.unregister("__sm_jsonl")
        if table.num_rows:
            yield from table.cast(reader.schema).to_batches()


def duckdb_error() -> type[Exception]:
    import duckdb

    return duckdb.Error


def reject_first_bad_line(con: duckdb.DuckDBPyConnection) -> None:
    bad = con.execute(
        f"select min({LINE}) from __sm_jsonl where not coalesce(json_valid(__sm_j), false) "
        "or json_type(__sm_j) <> 'OBJECT'"
    ).fetchall()[0][0]
    if bad is not None:
        raise FileUnreadable(f"could not be read as JSONL (line {bad} is not a JSON object)")


# --------------------------------------------------------------------------- Parquet


def _as_text(name: str, array: pa.Array) -> pa.Array:
    kind = array.type
    if pa.types.is_dictionary(kind):
        array = array.dictionary_decode()
        kind = array.type
    if pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        array = array.cast(pa.string())
        kind = array.type
    if pa.types.is_string(kind):
        try:
            array.validate(full=True)
        except pa.ArrowInvalid as exc:
            raise FileUnreadable(f"column {name} holds text that is not valid UTF-8 ({exc})") from exc
        return array
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        try:
            return array.cast(pa.string())
        except pa.ArrowInvalid as exc:
            raise FileUnreadable(f"column {name} holds bytes that are not UTF-8 text ({exc})") from exc
    if pa.types.is_nested(kind):
        return pa.array([None if v is None else json.dumps(v, default=str) for v in array.to_pylist()], pa.string())
    return pc.cast(array, pa.string())


#: Arrow types a Parquet column may already have for each contract type: such columns are
#: handed to the checks typed (cast, not parsed from text); anything else goes through text.
_TYPED_INPUT = {
    "integer": pa.types.is_integer,
    "decimal": lambda t: pa.types.is_decimal(t) or pa.types.is_floating(t) or pa.types.is_integer(t),
    "boolean": pa.types.is_boolean,
    "date": lambda t: pa.types.is_date(t) or pa.types.is_timestamp(t),
    "timestamp": lambda t: pa.types.is_timestamp(t) or pa.types.is_date(t),
}


def typed_columns(landing_file: LandingFile) -> frozenset[str]:
    """Contract columns of a Parquet file whose type needs no text round trip (none for text files)."""
    if landing_file.file_format != "parquet" or landing_file.mapping is not None:
        return frozenset()
    import pyarrow.parquet as pq

    schema = pq.read_schema(landing_file.path)
    kinds = {c.name: c.type for c in landing_file.entity.columns}
    found = set()
    for spelled, name in zip(landing_file.file_columns, landing_file.columns, strict=True):
        kind = kinds.get(name)
        field_type = schema.field(spelled).type
        if pa.types.is_dictionary(field_type):
            field_type = field_type.value_type
        if kind in _TYPED_INPUT and _TYPED_INPUT[kind](field_type):
            found.add(name)
    return frozenset(found)


def _parquet_batches(reader: TextReader) -> Iterator[pa.RecordBatch]:
    import pyarrow.parquet as pq

    lf = reader.landing_file
    typed = typed_columns(lf)
    line = 1
    try:
        parquet = pq.ParquetFile(lf.path)
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=list(lf.file_columns)):
            columns = []
            for i, name in enumerate(reader.names):
                array = batch.column(i)
                if name in typed:
                    columns.append(array.dictionary_decode() if pa.types.is_dictionary(array.type) else array)
                else:
                    columns.append(_as_text(lf.file_columns[i], array))
            lines = pa.array(np.arange(line, line + batch.num_rows, dtype=np.int64))
            line += batch.num_rows
            yield pa.RecordBatch.from_arrays([*columns, lines], names=[*reader.names, LINE])
    except (pa.ArrowException, OSError) as exc:
        raise FileUnreadable(f"could not be read as PARQUET ({str(exc).splitlines()[0]})") from exc
