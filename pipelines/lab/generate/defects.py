"""Named defects injected into the last written drop, to exercise the loader's quality gate.

Row-level defects change one cell (or, for the events, a few rows) and keep the rest of the
file valid; file-level defects break the whole file. Every applied defect is reported as a
dict: ``defect``, ``entity``, ``file``, ``line`` (1-based line of the file, the CSV header
being line 1; for Parquet the 1-based row number), ``row`` (1-based data row), ``column``,
``value`` (as written) and, where useful, a ``note``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: Defect name -> the entity (``source/name``) it lands in.
DEFECTS: dict[str, str] = {
    "unparseable_value": "crm/accounts",
    "missing_required": "crm/activities",
    "bad_enum": "crm/support_cases",
    "negative_amount": "billing/invoices",
    "end_before_start": "billing/subscriptions",
    "duplicate_key": "usage/events",
    "missing_file": "crm/nps_responses",
    "missing_column": "billing/invoices",
    "empty_file": "usage/events",
    "bad_encoding": "crm/accounts",
    "wrong_format": "billing/subscriptions",
    "mass_quarantine": "usage/events",
    # Inputs real exports carry (issue 12), applied to the written CSV file of the last drop
    # (:func:`apply_text_defects`); the loader must take each as a careful operator expects.
    "crlf_header": "usage/events",  # header ends in CRLF, rows in LF: loads
    "utf8_bom": "crm/accounts",  # Excel's "CSV UTF-8": loads, first column found
    "utf16": "crm/nps_responses",  # the file re-encoded as UTF-16 LE with a BOM: rejected, named
    "nul_byte": "crm/activities",  # a NUL inside a value of the last row: that row quarantined
    "future_events": "usage/events",  # a few events a year ahead: quarantined as future-dated
    "header_only": "crm/accounts",  # a snapshot with a header and no rows: the night stops
    "bad_accounts": "crm/accounts",  # 5% of the accounts with a bad country: fails per entity
    "loader_column": "billing/invoices",  # an extra column named _source_line: rejected, named
    "multiline_record": "crm/support_cases",  # quoted newline + a malformed line before a bad row
    "volume_spike": "usage/events",  # the last drop holds 12x its events (re-sent as new ids)
}
#: Defects that replace or remove the whole file.
WHOLE_FILE = frozenset({"missing_file", "empty_file", "wrong_format", "utf16", "header_only"})
#: Defects applied to the text of a written CSV file (``--format csv`` only).
TEXT_DEFECTS = ("crlf_header", "utf8_bom", "nul_byte", "future_events", "bad_accounts", "loader_column",
                "multiline_record", "volume_spike", "header_only", "utf16")
FUTURE_EVENTS = 3
BAD_ACCOUNT_SHARE = 0.05
SPIKE_COPIES = 12
LOADER_COLUMN = "_source_line"
#: One-cell defects: column and the value written there (None = empty).
CELL_DEFECTS: dict[str, tuple[str, Any]] = {
    "unparseable_value": ("employee_count", "abc"),
    "missing_required": ("account_id", None),
    "bad_enum": ("priority", "critical"),
    "negative_amount": ("amount", Decimal("-10.00")),
    "end_before_start": ("end_date", None),  # start_date minus 7 days, per row
}
MISSING_COLUMN = "currency"
ENCODING_NAME = "Société Générale"
QUARANTINE_SHARE = 0.30


def validate(defects: Sequence[str]) -> tuple[str, ...]:
    """Known, de-duplicated defect names; raises ValueError on unknown names or conflicts."""
    names = tuple(dict.fromkeys(defects))
    unknown = [d for d in names if d not in DEFECTS]
    if unknown:
        raise ValueError(f"unknown defect(s) {', '.join(unknown)}; known: {', '.join(DEFECTS)}")
    for whole in WHOLE_FILE & set(names):
        clash = [d for d in names if d != whole and DEFECTS[d] == DEFECTS[whole]]
        if clash:
            raise ValueError(
                f"defect {whole!r} replaces {DEFECTS[whole]} entirely, so {', '.join(clash)} "
                "cannot land there too; ask for them in separate runs"
            )
    return names


def for_entity(defects: Sequence[str], entity: str) -> list[str]:
    return [d for d in defects if DEFECTS[d] == entity]


def line_of(row0: int, file_format: str) -> int:
    """1-based line of the 0-based data row ``row0`` (CSV: after the header line)."""
    return row0 + 2 if file_format == "csv" else row0 + 1


def record(defect: str, path: Path, *, row0: int | None = None, file_format: str = "csv",
           column: str | None = None, value: Any = None, **extra: Any) -> dict[str, Any]:
    return {
        "defect": defect,
        "entity": DEFECTS[defect],
        "file": str(path),
        "line": None if row0 is None else line_of(row0, file_format),
        "row": None if row0 is None else row0 + 1,
        "column": column,
        "value": value,
        **extra,
    }


def defect_rng(seed: int, defect: str) -> np.random.Generator:
    return np.random.default_rng([seed, 9, list(DEFECTS).index(defect)])


def _set_cell(column: pa.ChunkedArray | pa.Array, row0: int, value: pa.Scalar) -> pa.Array:
    mask = np.zeros(len(column), dtype=bool)
    mask[row0] = True
    return pc.if_else(pa.array(mask), value, column)


def inject_cell(table: pa.Table, defect: str, seed: int) -> tuple[pa.Table, int, str, Any]:
    """Apply a one-cell defect to a random row; returns (table, 0-based row, column, value text)."""
    if table.num_rows == 0:
        raise ValueError(f"cannot inject {defect!r}: {DEFECTS[defect]} has no rows in the last drop")
    column, value = CELL_DEFECTS[defect]
    row0 = int(defect_rng(seed, defect).integers(table.num_rows))
    col = table.column(column)
    if defect == "unparseable_value":
        col = pc.cast(col, pa.string())
        new = _set_cell(col, row0, pa.scalar(value, pa.string()))
        text = value
    elif defect == "end_before_start":
        start = table.column("start_date")[row0].as_py()
        end = start - dt.timedelta(days=7)
        new = _set_cell(col, row0, pa.scalar(end, pa.date32()))
        text = end.isoformat()
    elif defect == "negative_amount":
        new = _set_cell(col, row0, pa.scalar(value, col.type))
        text = f"{value}"
    else:
        new = _set_cell(col, row0, pa.scalar(value, col.type))
        text = "" if value is None else value
    index = table.column_names.index(column)
    return table.set_column(index, pa.field(column, new.type), new), row0, column, text


def with_encoding_name(table: pa.Table, seed: int) -> tuple[pa.Table, int]:
    """Give one account the non-ASCII name written in Latin-1 by the ``bad_encoding`` defect."""
    if table.num_rows == 0:
        raise ValueError("cannot inject 'bad_encoding': crm/accounts has no rows in the last drop")
    row0 = int(defect_rng(seed, "bad_encoding").integers(table.num_rows))
    index = table.column_names.index("account_name")
    new = _set_cell(table.column(index), row0, pa.scalar(ENCODING_NAME, pa.string()))
    return table.set_column(index, "account_name", new), row0


def latin1_strings(column: pa.Array, row0: int) -> pa.Array:
    """A string column whose ``row0`` value is Latin-1 bytes (invalid UTF-8), for Parquet files."""
    values = column.to_pylist()
    raw = [None if v is None else v.encode("latin-1" if i == row0 else "utf-8") for i, v in enumerate(values)]
    return pa.array(raw, pa.binary()).view(pa.string())


def quarantine_mask(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.random(n) < QUARANTINE_SHARE


def blank_account_ids(table: pa.Table, mask: np.ndarray) -> pa.Table:
    """Events without the account they belong to (a required value: every such row is quarantined;
    a user id is optional in the contract, an event may have none)."""
    index = table.column_names.index("account_id")
    new = pc.if_else(pa.array(mask), pa.scalar(None, pa.string()), table.column(index))
    return table.set_column(index, table.schema.field(index), new)


def conflicting_copy(row: pa.Table) -> pa.Table:
    """The same event_id with different content (90 s later, another event name)."""
    name = row.column("event_name")[0].as_py()
    new_name, new_feature = ("login", None) if name != "login" else ("dashboard_viewed", "dashboards")
    at = row.column("occurred_at")[0].as_py() + dt.timedelta(seconds=90)
    return pa.table(
        {
            "event_id": row.column("event_id"),
            "account_id": row.column("account_id"),
            "user_id": row.column("user_id"),
            "event_name": pa.array([new_name]),
            "feature": pa.array([new_feature], pa.string()),
            "occurred_at": pa.array([at], pa.timestamp("s")),
        },
        schema=row.schema,
    )


# --- text-level defects of a written CSV file ----------------------------------------------------


def _read_lines(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")


def _write_lines(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"\n".join(lines))


def _csv_rows(path: Path) -> pa.Table:
    import pyarrow.csv as pacsv

    return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(strings_can_be_null=False))


def _apply_text_defect(defect: str, path: Path, seed: int) -> dict[str, Any]:
    """Change the written CSV file for one text-level defect; returns its record."""
    lines = _read_lines(path)  # lines[0] is the header (line 1); the last element is b""
    rows = len(lines) - 2
    if rows < 1 and defect not in ("crlf_header", "utf8_bom", "utf16", "header_only", "loader_column"):
        raise ValueError(f"cannot inject {defect!r}: {DEFECTS[defect]} has no rows in the last drop")
    rng = defect_rng(seed, defect)
    if defect == "crlf_header":
        lines[0] += b"\r"
        _write_lines(path, lines)
        return record(defect, path, value="header line ends in CRLF, rows in LF")
    if defect == "utf8_bom":
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
        return record(defect, path, value="UTF-8 byte-order mark")
    if defect == "utf16":
        path.write_bytes(path.read_bytes().decode("utf-8").encode("utf-16"))
        return record(defect, path, value="UTF-16 LE with a byte-order mark")
    if defect == "header_only":
        _write_lines(path, [lines[0], b""])
        return record(defect, path, value="header only, no rows", rows_removed=rows)
    if defect == "loader_column":
        lines = [lines[0] + b',"' + LOADER_COLUMN.encode() + b'"'] + [ln + b",7" for ln in lines[1:-1]] + [b""]
        _write_lines(path, lines)
        return record(defect, path, column=LOADER_COLUMN, value="an extra column named like the loader's own")
    if defect == "nul_byte":
        row0 = rows - 1  # the last row: beyond the first 64 KiB in any file of some size
        lines[row0 + 1] = lines[row0 + 1].replace(b'"', b'"\x00', 1)
        _write_lines(path, lines)
        column = lines[0].decode().split(",")[0].strip('"')
        return record(defect, path, row0=row0, column=column, value="NUL byte", note="in the first value")
    if defect == "future_events":
        header = [h.strip('"') for h in lines[0].decode().split(",")]
        at = header.index("occurred_at")
        picked = sorted(rng.choice(rows, size=min(FUTURE_EVENTS, rows), replace=False).tolist())
        for row0 in picked:
            fields = lines[row0 + 1].decode().split(",")
            when = dt.datetime.fromisoformat(fields[at].strip('"')) + dt.timedelta(days=365)
            fields[at] = when.strftime("%Y-%m-%d %H:%M:%S")
            lines[row0 + 1] = ",".join(fields).encode()
        _write_lines(path, lines)
        return record(defect, path, column="occurred_at", value="a year after the run date",
                      lines=[line_of(r, "csv") for r in picked])
    if defect == "bad_accounts":
        header = [h.strip('"') for h in lines[0].decode().split(",")]
        at = header.index("country")
        count = max(1, round(rows * BAD_ACCOUNT_SHARE))
        picked = sorted(rng.choice(rows, size=count, replace=False).tolist())
        for row0 in picked:
            fields = lines[row0 + 1].decode().split(",")
            fields[at] = '"USA"'
            lines[row0 + 1] = ",".join(fields).encode()
        _write_lines(path, lines)
        return record(defect, path, column="country", value="USA", lines=[line_of(r, "csv") for r in picked],
                      rows_affected=count)
    if defect == "multiline_record":
        if rows < 3:
            raise ValueError("cannot inject 'multiline_record': crm/support_cases needs 3 rows in the last drop")
        header = [h.strip('"') for h in lines[0].decode().split(",")]
        at = header.index("csat")
        # row 0: a quoted value spanning two lines; after row 0: a malformed line (one field);
        # the last row: an unparseable csat, whose physical line the loader must report.
        first = lines[1].decode().split(",")
        first[0] = first[0][:-1] + '\nsecond line"' if first[0].endswith('"') else first[0]
        lines[1] = ",".join(first).encode()
        lines.insert(2, b'"not a record"')
        last = lines[-2].decode().split(",")
        last[at] = "five"
        lines[-2] = ",".join(last).encode()
        _write_lines(path, lines)
        # physical lines: header 1, row 0 on lines 2-3, the malformed line 4, row k on line k + 4
        return record(defect, path, column="csat", value="five", line=rows + 3, malformed_line=4,
                      multiline_line=2)
    if defect == "volume_spike":
        body = lines[1:-1]
        copies = [lines[0], *body]
        for k in range(1, SPIKE_COPIES):
            copies += [ln.replace(b'"evt_', f'"evt_copy{k}_'.encode(), 1) for ln in body]
        _write_lines(path, [*copies, b""])
        return record(defect, path, value=f"{SPIKE_COPIES}x the drop's events", rows_affected=rows * SPIKE_COPIES)
    raise ValueError(f"{defect!r} is not a text defect")


def apply_text_defects(drop_dir: Path, defects: Sequence[str], file_format: str, seed: int) -> list[dict[str, Any]]:
    """Apply the text-level defects to the last drop's files (CSV only); their records."""
    wanted = [d for d in defects if d in TEXT_DEFECTS]
    if wanted and file_format != "csv":
        raise ValueError(f"defect(s) {', '.join(wanted)} change CSV text: generate with --format csv")
    applied = []
    for defect in wanted:
        source, name = DEFECTS[defect].split("/")
        applied.append(_apply_text_defect(defect, drop_dir / source / f"{name}.csv", seed))
    return applied
