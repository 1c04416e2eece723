"""The landing zone: finding a night's extract files and the file-level checks.

A file-level defect (missing file, missing required column, empty file, wrong
encoding, a file that is not the format its name says) stops the whole source: the
loader loads nothing of it and the error names the file and what to do.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import json
from dataclasses import dataclass
from pathlib import Path

from pipelines.contract import FILE_FORMATS, Entity, entities_of

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


class SourceRejected(RuntimeError):
    """A source's drop has file-level defects; nothing of the source was loaded."""

    def __init__(self, source: str, run_date: dt.date, problems: list[FileProblem]):
        self.source = source
        self.run_date = run_date
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"Source '{source}' for run date {run_date} was not loaded "
            f"({len(problems)} file problem(s)); nothing of it was changed in the warehouse:\n{lines}"
        )


@dataclass(frozen=True)
class LandingFile:
    entity: Entity
    path: Path
    file_format: str
    file_columns: tuple[str, ...]  # as spelled in the file

    @property
    def columns(self) -> tuple[str, ...]:
        """The file's columns, contract columns spelled as the contract spells them."""
        names = {c.name.lower(): c.name for c in self.entity.columns}
        return tuple(names.get(c.lower(), c) for c in self.file_columns)


def candidate_paths(drop_dir: Path, entity: Entity) -> list[Path]:
    return [drop_dir / entity.source / f"{entity.name}.{ext}" for ext in FILE_FORMATS]


def _check_utf8(path: Path) -> FileProblem | None:
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                bad_line = line + chunk[: exc.start].count(b"\n")
                return FileProblem(
                    path,
                    f"is not valid UTF-8 (first bad byte {chunk[exc.start:exc.start + 1]!r} on line {bad_line})",
                    "Re-export the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`) and re-run the ingest.",
                )
            line += chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return FileProblem(path, "ends in a truncated UTF-8 sequence", "Re-export the file as UTF-8.")
    return None


def _text_columns(path: Path, file_format: str) -> tuple[tuple[str, ...] | None, FileProblem | None]:
    with path.open("rb") as fh:
        head = fh.read(64 * 1024)
    if head.startswith(PARQUET_MAGIC) or b"\x00" in head:
        return None, FileProblem(
            path,
            f"looks binary, not {file_format.upper()} text",
            f"Export it as {file_format.upper()} or give it the extension of its real format.",
        )
    problem = _check_utf8(path)
    if problem:
        return None, problem
    first_line = head.decode("utf-8", errors="replace").splitlines()[0] if head.strip() else ""
    if not first_line.strip():
        return None, FileProblem(path, "has no header line", "Export the file with a header row.")
    if file_format == "csv":
        header = next(csv.reader(io.StringIO(first_line)))
        return tuple(h.strip() for h in header), None
    try:
        record = json.loads(first_line)
    except json.JSONDecodeError as exc:
        return None, FileProblem(
            path, f"line 1 is not a JSON object ({exc.msg})", "Write one JSON object per line (JSON Lines)."
        )
    if not isinstance(record, dict):
        return None, FileProblem(path, "line 1 is not a JSON object", "Write one JSON object per line.")
    return tuple(record), None


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
    """File-level checks of one landing file; the file's columns when it passes."""
    file_format = path.suffix.lstrip(".")
    if path.stat().st_size == 0:
        return None, [FileProblem(path, "is empty (0 bytes)", "Check the export job; re-deliver the file.")]
    if file_format == "parquet":
        columns, problem = _parquet_columns(path)
    else:
        columns, problem = _text_columns(path, file_format)
    if problem:
        return None, [problem]
    assert columns is not None
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
    return LandingFile(entity, path, file_format, columns), []


def find_files(drop_dir: Path, source: str) -> tuple[list[LandingFile], list[FileProblem]]:
    """Locate and check every contract file of one source in a night's drop."""
    files: list[LandingFile] = []
    problems: list[FileProblem] = []
    for entity in entities_of(source):
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


def check_drop(drop_dir: Path, sources: tuple[str, ...]) -> dict[str, list[FileProblem]]:
    """File-level problems per source (empty lists when the drop is complete)."""
    return {source: find_files(drop_dir, source)[1] for source in sources}
