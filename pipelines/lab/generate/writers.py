"""File writers for landing drops: CSV, Parquet and JSON Lines, whole tables or streamed.

CSV: header row, comma separated, UTF-8, empty field = null, booleans true/false, dates
YYYY-MM-DD, timestamps ``YYYY-MM-DD HH:MM:SS`` (UTC). JSON Lines: one object per row with the
same text forms for dates and timestamps, numbers and booleans unquoted, null for missing.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipelines.contract import Entity

_ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "integer": pa.int64(),
    "decimal": pa.decimal128(18, 2),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("s"),
}
_JSONL_SLICE = 200_000
_PARQUET_COMPRESSION = "zstd"


def arrow_schema(entity: Entity) -> pa.Schema:
    """The Arrow schema of an entity's contract columns (natural types)."""
    return pa.schema([(c.name, _ARROW_TYPES[c.type]) for c in entity.columns])


def _json_values(column: pa.Array) -> pa.Array:
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        escaped = pc.replace_substring(pc.replace_substring(column, "\\", "\\\\"), '"', '\\"')
        return pc.fill_null(pc.binary_join_element_wise('"', escaped, '"', ""), "null")
    if pa.types.is_binary(column.type):
        return _json_values(column.view(pa.string()))
    text = pc.cast(column, pa.string())
    if pa.types.is_date(column.type) or pa.types.is_timestamp(column.type):
        return pc.fill_null(pc.binary_join_element_wise('"', text, '"', ""), "null")
    return pc.fill_null(text, "null")


def jsonl_bytes(table: pa.Table) -> bytes:
    """JSON Lines encoding of ``table``, built column-wise with Arrow compute (no row loop)."""
    out = io.BytesIO()
    for start in range(0, max(table.num_rows, 1), _JSONL_SLICE):
        part = table.slice(start, _JSONL_SLICE).combine_chunks()
        if part.num_rows == 0:
            break
        pieces: list[pa.Array | str] = []
        for i, name in enumerate(part.column_names):
            pieces.append(("{" if i == 0 else ",") + f'"{name}":')
            pieces.append(_json_values(part.column(i).chunk(0) if part.column(i).num_chunks else
                                       pa.array([], part.schema.field(i).type)))
        pieces.append("}\n")
        lines = pc.binary_join_element_wise(*pieces, "")
        offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[lines.offset: lines.offset + len(lines) + 1]
        data = lines.buffers()[2]
        out.write(memoryview(data)[offsets[0]: offsets[-1]])
    return out.getvalue()


def table_bytes(table: pa.Table, file_format: str) -> bytes:
    """The encoded file content of a whole table."""
    if file_format == "jsonl":
        return jsonl_bytes(table)
    buf = io.BytesIO()
    if file_format == "csv":
        pacsv.write_csv(table, buf)
    elif file_format == "parquet":
        pq.write_table(table, buf, compression=_PARQUET_COMPRESSION)
    else:
        raise ValueError(f"unknown file format {file_format!r}")
    return buf.getvalue()


def write_table(path: Path, table: pa.Table, file_format: str) -> None:
    """Write a whole table (a snapshot entity) to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if file_format == "csv":
        pacsv.write_csv(table, path)
    elif file_format == "parquet":
        pq.write_table(table, path, compression=_PARQUET_COMPRESSION)
    else:
        path.write_bytes(table_bytes(table, file_format))


class StreamWriter:
    """Appends tables of one schema to a single file (the usage events of one drop)."""

    def __init__(self, path: Path, schema: pa.Schema, file_format: str):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.schema, self.file_format = path, schema, file_format
        self.rows = 0
        self._writer: pacsv.CSVWriter | pq.ParquetWriter | None = None
        self._fh: BinaryIO | None = None
        if file_format == "csv":
            self._writer = pacsv.CSVWriter(str(path), schema)
        elif file_format == "parquet":
            self._writer = pq.ParquetWriter(str(path), schema, compression=_PARQUET_COMPRESSION)
        elif file_format == "jsonl":
            self._fh = path.open("wb")
        else:
            raise ValueError(f"unknown file format {file_format!r}")

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        table = table.cast(self.schema)
        if self._fh is not None:
            self._fh.write(jsonl_bytes(table))
        else:
            assert self._writer is not None
            self._writer.write_table(table)
        self.rows += table.num_rows

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
        if self._writer is not None:
            self._writer.close()
