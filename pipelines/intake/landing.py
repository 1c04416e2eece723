"""The landing zone: finding a night's extract files and the file-level checks.

A file-level defect (missing file, missing required column, empty file, wrong
encoding, a file that is not the format its name says, a column named like the loader's
own) stops the whole source: the loader loads nothing of it and the error names the file
and what to do. A UTF-8 byte-order mark is skipped; CRLF and LF line ends may be mixed.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import json
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.contract import (
    FILE_FORMATS,
    LOAD_METADATA_COLUMNS,
    RESERVED_PREFIX,
    SNAPSHOT_METADATA_COLUMNS,
    Entity,
    default_in_use,
    entities_of,
    reserved_names,
)
from pipelines.errors import DataProblem

if TYPE_CHECKING:
    from pipelines.intake.readers import QuoteScanner

PARQUET_MAGIC = b"PAR1"
_CHUNK = 16 * 1024 * 1024


@dataclass(frozen=True)
class FileProblem:
    """Why one landing file cannot be loaded."""

    path: Path
    problem: str
    action: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}. {self.action}"


class SourceRejected(DataProblem, RuntimeError):
    """A source's drop has file-level defects; nothing of the source was loaded."""

    def __init__(self, source: str, run_date: dt.date, problems: list[FileProblem]):
        self.source = source
        self.run_date = run_date
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"Source '{source}' for run date {run_date} was not loaded "
            f"({len(problems)} file problem(s)); nothing of it was changed in the raw lake:\n{lines}"
        )


@dataclass(frozen=True)
class LandingFile:
    entity: Entity
    path: Path
    file_format: str
    file_columns: tuple[str, ...]  # as spelled in the file
    has_nul: bool = False  # a NUL byte somewhere in a text file (its rows are quarantined)
    #: CSV: (line, line text) of every quote that would alter its value (readers.QuoteScanner);
    #: the records holding them are quarantined as malformed
    quote_problems: tuple[tuple[int, str], ...] = ()
    mapping: Any = None  # a tool's export read through a mapping (pipelines/intake/mapping.py BoundMapping)

    @property
    def columns(self) -> tuple[str, ...]:
        """The file's columns, contract columns spelled as the contract spells them."""
        names = {c.name.lower(): c.name for c in self.entity.columns}
        return tuple(names.get(c.lower(), c) for c in self.file_columns)


def candidate_paths(drop_dir: Path, entity: Entity) -> list[Path]:
    return [drop_dir / entity.source / f"{entity.name}.{ext}" for ext in FILE_FORMATS]


def _utf16_byte_order(head: bytes) -> str | None:
    """'LE'/'BE' when the text looks UTF-16 (a byte-order mark, or NULs in every other byte)."""
    if head.startswith(codecs.BOM_UTF16_LE):
        return "LE"
    if head.startswith(codecs.BOM_UTF16_BE):
        return "BE"
    sample = head[:4096]
    if len(sample) >= 8:
        even, odd = sample[0::2], sample[1::2]
        if odd.count(0) > 0.4 * len(odd) and even.count(0) < 0.05 * len(even):
            return "LE"
        if even.count(0) > 0.4 * len(even) and odd.count(0) < 0.05 * len(odd):
            return "BE"
    return None


def _scan_text(path: Path, quotes: QuoteScanner | None = None) -> tuple[FileProblem | None, bool]:
    """Whole-file scan: the first invalid UTF-8 byte (with its line), and whether a NUL occurs;
    ``quotes`` (CSV) is fed every chunk, to find the malformed quotes.

    One reused buffer; ASCII chunks skip the decoder (``isascii`` and the NUL search run at
    memory speed), so a 10 GB file costs a few seconds of CPU. Lines are counted only to
    name the line of a bad byte. A NUL byte is not a file problem: the rows holding one are
    quarantined with their line (``pipelines/intake/row_checks.py``), wherever it is in the file.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    has_nul = False
    offset = 0
    buffer = bytearray(_CHUNK)
    with path.open("rb", buffering=0) as fh:
        while size := fh.readinto(buffer):  # type: ignore[attr-defined]
            chunk = memoryview(buffer)[:size]
            if quotes is not None:
                quotes.feed(chunk, has_quote=buffer.find(b'"', 0, size) >= 0)
            has_nul = has_nul or buffer.find(b"\x00", 0, size) >= 0
            ascii_only = buffer.isascii() if size == _CHUNK else bytes(chunk).isascii()
            if not ascii_only or decoder.getstate()[0]:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    return _bad_utf8(path, offset + exc.start), has_nul
            offset += size
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return FileProblem(path, "ends in a truncated UTF-8 sequence", "Re-export the file as UTF-8."), has_nul
    return None, has_nul


def _lines_at(path: Path, offsets: list[int]) -> list[tuple[int, str]]:
    """(line number, the physical line's text) of each byte offset, in one pass over the file
    up to the last of them (offsets in order)."""
    found: list[tuple[int, str]] = []
    line, position, i = 1, 0, 0
    with path.open("rb") as fh:
        while i < len(offsets) and (chunk := fh.read(_CHUNK)):
            while i < len(offsets) and offsets[i] < position + len(chunk):
                at = offsets[i] - position
                number = line + chunk.count(b"\n", 0, at)
                found.append((number, _line_text(fh, offsets[i])))
                i += 1
            line += chunk.count(b"\n")
            position += len(chunk)
            fh.seek(position)
    return found


def _line_text(fh, offset: int, window: int = 1 << 16) -> str:
    """The physical line holding byte ``offset`` (at most ``window`` bytes either side)."""
    start = max(0, offset - window)
    fh.seek(start)
    data = fh.read(offset - start + window)
    here = offset - start
    begin = data.rfind(b"\n", 0, here) + 1
    end = data.find(b"\n", here)
    return data[begin:end if end >= 0 else len(data)].rstrip(b"\r").decode("utf-8", errors="replace")


def _bad_utf8(path: Path, position: int) -> FileProblem:
    """The problem of an invalid UTF-8 byte at ``position``, naming its line."""
    line = 1
    with path.open("rb") as fh:
        remaining = position
        while remaining > 0 and (chunk := fh.read(min(_CHUNK, remaining))):
            line += chunk.count(b"\n")
            remaining -= len(chunk)
        bad = fh.read(1)
    return FileProblem(
        path,
        f"is not valid UTF-8 (first bad byte {bad!r} on line {line})",
        "Re-export the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`) and re-run the ingest.",
    )


def _first_line(head: bytes) -> str:
    text = head.split(b"\n", 1)[0].rstrip(b"\r")
    if text.startswith(codecs.BOM_UTF8):  # Excel's "CSV UTF-8"
        text = text[len(codecs.BOM_UTF8):]
    return text.decode("utf-8", errors="replace")


#: (line, text of that physical line) of each malformed quote of a CSV file (QuoteScanner)
QuoteProblems = tuple[tuple[int, str], ...]


def _text_columns(
    path: Path, file_format: str,
) -> tuple[tuple[str, ...] | None, FileProblem | None, bool, QuoteProblems]:
    with path.open("rb") as fh:
        head = fh.read(64 * 1024)
    order = _utf16_byte_order(head)
    if order:
        return None, FileProblem(
            path,
            f"is UTF-16 ({order}) text, not UTF-8",
            f"Re-export it as UTF-8 (e.g. `iconv -f UTF-16{order} -t UTF-8 {path.name} > fixed.{file_format}`, "
            "or Excel's \"CSV UTF-8\"), then re-run the ingest.",
        ), False, ()
    if head.startswith(PARQUET_MAGIC) or head.count(0) > max(16, len(head) // 10):
        return None, FileProblem(
            path,
            f"looks binary, not {file_format.upper()} text",
            f"Export it as {file_format.upper()} or give it the extension of its real format.",
        ), False, ()
    from pipelines.intake.readers import QuoteScanner  # numpy: only when a file is checked

    quotes = QuoteScanner(len(codecs.BOM_UTF8) if head.startswith(codecs.BOM_UTF8) else 0) \
        if file_format == "csv" else None
    problem, has_nul = _scan_text(path, quotes)
    if problem:
        return None, problem, has_nul, ()
    malformed = tuple(_lines_at(path, quotes.finish())) if quotes is not None else ()
    if malformed and malformed[0][0] == 1:
        return None, FileProblem(
            path, "has a quote inside a quoted column name that is not doubled (line 1, the header)",
            'Write a quote inside a quoted value as two quotes ("") in the export, then re-run.',
        ), has_nul, ()
    first_line = _first_line(head)
    if not first_line.strip():
        return None, FileProblem(path, "has no header line", "Export the file with a header row."), has_nul, ()
    if "\x00" in first_line:
        return None, FileProblem(path, "has a NUL byte in its header (line 1)",
                                 "Re-export the file without it."), has_nul, ()
    if file_format == "csv":
        header = next(csv.reader(io.StringIO(first_line)))
        return tuple(h.strip() for h in header), None, has_nul, malformed
    try:
        record = json.loads(first_line)
    except json.JSONDecodeError as exc:
        return None, FileProblem(
            path, f"line 1 is not a JSON object ({exc.msg})", "Write one JSON object per line (JSON Lines)."
        ), has_nul, ()
    if not isinstance(record, dict):
        return None, FileProblem(path, "line 1 is not a JSON object", "Write one JSON object per line."), has_nul, ()
    return tuple(record), None, has_nul, ()


def _parquet_columns(path: Path) -> tuple[tuple[str, ...] | None, FileProblem | None]:
    with path.open("rb") as fh:
        head = fh.read(4)
        fh.seek(-4, 2)
        tail = fh.read(4)
    if head != PARQUET_MAGIC or tail != PARQUET_MAGIC:
        return None, FileProblem(
            path,
            "is not a Parquet file (no PAR1 magic bytes)",
            "Export it as Parquet or give it the extension of its real format (.csv, .jsonl).",
        )
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except Exception as exc:
        return None, FileProblem(path, f"is an unreadable Parquet file ({exc})", "Re-export the file.")
    return tuple(schema.names), None


def inspect_file(entity: Entity, path: Path) -> tuple[LandingFile | None, list[FileProblem]]:
    """File-level checks of one landing file; the file's columns when it passes. A path that is
    not a readable file (a folder, no permission, ...) is a problem naming it, never a bare OSError."""
    if path.is_dir():
        return None, [FileProblem(
            path, "is a folder, not a file",
            f"Deliver {entity.qualified} as one file named {path.name} (move the folder's content into it, "
            "or remove the folder), then re-run.")]
    try:
        return _inspect_file(entity, path)
    except OSError as exc:
        return None, [FileProblem(
            path, f"cannot be read ({exc.strerror or exc})",
            "Check that the file exists, is a regular file and is readable by the pipeline's user, then re-run.")]


def _inspect_file(entity: Entity, path: Path) -> tuple[LandingFile | None, list[FileProblem]]:
    file_format = path.suffix.lstrip(".")
    if path.stat().st_size == 0:
        return None, [FileProblem(path, "is empty (0 bytes)", "Check the export job; re-deliver the file.")]
    has_nul, quote_problems = False, ()
    if file_format == "parquet":
        columns, problem = _parquet_columns(path)
    else:
        columns, problem, has_nul, quote_problems = _text_columns(path, file_format)
    if problem:
        return None, [problem]
    assert columns is not None
    folded = [c.lower() for c in columns]
    repeated = sorted({c for c in columns if folded.count(c.lower()) > 1})
    if repeated:
        return None, [FileProblem(path, f"has column(s) {', '.join(repeated)} more than once (letter case "
                                  "does not count)", "Give every column its own name in the export.")]
    reserved = reserved_names(columns)
    if reserved:
        return None, [FileProblem(
            path,
            f"has column(s) {', '.join(reserved)} whose names the loader uses itself "
            f"({', '.join((*LOAD_METADATA_COLUMNS, *SNAPSHOT_METADATA_COLUMNS))}, and names starting with "
            f"{RESERVED_PREFIX})",
            "Rename or drop them in the export (they would override the load metadata).",
        )]
    present = {c.lower() for c in columns}
    missing = [
        c.name for c in entity.columns if not c.optional_column and c.name.lower() not in present
    ]
    if missing:
        return None, [
            FileProblem(
                path,
                f"lacks required column(s) {', '.join(missing)}",
                f"Add them to the export (see docs/extract-contract.md, {entity.qualified}).",
            )
        ]
    return LandingFile(entity, path, file_format, columns, has_nul, quote_problems), []


def find_files(
    drop_dir: Path, source: str, in_use: Collection[str] | None = None, mappings: dict[str, Any] | None = None,
) -> tuple[list[LandingFile], list[FileProblem]]:
    """Locate and check every contract file of one source in a night's drop. ``in_use``: the
    qualified names of the entities in use (setting ``entities_in_use``; None = the contract's
    default); the files of the others are neither required nor checked. An entity with a mapping
    (``mappings``: by entity, pipelines/intake/mapping.py) is read from the tool's export instead."""
    files: list[LandingFile] = []
    problems: list[FileProblem] = []
    wanted = set(default_in_use() if in_use is None else in_use)
    for entity in entities_of(source):
        if entity.qualified not in wanted:
            continue
        if mappings and entity.qualified in mappings:
            # the mapping checks its own export (pipelines/intake/mapping.py Mapping.inspect)
            mapped, mapped_problems = mappings[entity.qualified].inspect(drop_dir)
            problems.extend(mapped_problems)
            if mapped:
                files.append(mapped)
            continue
        found = [p for p in candidate_paths(drop_dir, entity) if p.exists()]
        if not found:
            expected = drop_dir / entity.source / f"{entity.name}.{{{','.join(FILE_FORMATS)}}}"
            problems.append(
                FileProblem(
                    expected,
                    "is missing",
                    "Deliver the file (an empty extract still needs its header row), then re-run.",
                )
            )
            continue
        if len(found) > 1:
            problems.append(
                FileProblem(
                    found[0],
                    f"is delivered in several formats ({', '.join(p.name for p in found)})",
                    "Keep exactly one file per entity.",
                )
            )
            continue
        landing_file, file_problems = inspect_file(entity, found[0])
        problems.extend(file_problems)
        if landing_file:
            files.append(landing_file)
    return files, problems


def check_drop(
    drop_dir: Path, sources: tuple[str, ...], in_use: Collection[str] | None = None,
    mappings: dict[str, Any] | None = None,
) -> dict[str, list[FileProblem]]:
    """File-level problems per source (empty lists when the drop is complete); ``in_use`` and
    ``mappings`` as for :func:`find_files`."""
    return {source: find_files(drop_dir, source, in_use, mappings)[1] for source in sources}


def off_entity_files(drop_dir: Path, source: str, in_use: Collection[str]) -> dict[Entity, Path | None]:
    """The entities of ``source`` that are not in use, each with the file delivered for it anyway
    (None when there is none): it is not loaded."""
    return {entity: next((p for p in candidate_paths(drop_dir, entity) if p.exists()), None)
            for entity in entities_of(source) if entity.qualified not in in_use}
