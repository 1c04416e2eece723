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
}
#: Defects that replace or remove the whole file.
WHOLE_FILE = frozenset({"missing_file", "empty_file", "wrong_format"})
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


def blank_user_ids(table: pa.Table, mask: np.ndarray) -> pa.Table:
    index = table.column_names.index("user_id")
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
