"""Interim test helper: the raw lake, exported from the DuckDB warehouse's raw tables.

Ingestion is moving to write the night's accepted rows as Parquet itself, in this layout
(the "lake" work of issue 9):

    <lake>/raw/<source>/<entity>/_run_date=YYYY-MM-DD/<file>.parquet

with the contract columns typed, extra columns as strings, then _source_file,
_source_line and _loaded_at (_run_date comes from the folder). Until that lands, the
Spark build and the DuckDB-vs-Spark parity test get the same layout by exporting what
ingestion wrote to ``raw.*``. Delete this module once ingestion writes the lake.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb

from pipelines.contract import ENTITIES


def export_raw_lake(warehouse: Path, lake: Path) -> dict[str, int]:
    """Rewrite ``<lake>/raw`` from the warehouse's raw tables; returns rows per table."""
    counts: dict[str, int] = {}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        for entity in ENTITIES:
            folder = lake / "raw" / entity.source / entity.name
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            table = f"raw.{entity.raw_table}"
            columns = [r[0] for r in con.execute(f"select column_name from (describe {table})").fetchall()]
            data = [c for c in columns if c != "_run_date"]
            select = ", ".join(f'"{c}"' for c in data)
            con.execute(
                f"""copy (select {select}, _run_date from {table} order by _run_date, _source_line)
                to '{folder}' (format parquet, partition_by (_run_date), overwrite_or_ignore,
                               filename_pattern 'part-{{i}}')"""
            )
            counts[table] = con.execute(f"select count(*) from {table}").fetchone()[0]
    return counts
