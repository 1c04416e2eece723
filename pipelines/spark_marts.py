"""Reading what a Spark build wrote, without Spark.

With SEGMENT_MART_ENGINE=spark, dbt-spark writes every relation as plain Parquet under
the session's warehouse dir (settings.spark_home / "warehouse", set in
dbt_project/profiles.yml): ``<warehouse>/<schema>.db/<relation>/`` holds the files, and
a relation partitioned by a date (the daily marts, by as_of_date) has one Hive-style
folder per date (``as_of_date=2026-03-30/part-*.parquet``). Spark's Derby metastore
admits one process at a time, so readers go to the files directly: DuckDB reads them
as views with the same names (``marts.<mart>``), which is how the parity test compares
the engines and how the gate and publish can read Spark-built marts (docs/spark.md).
Spark puts partition columns last; these views restore the column order of the model
when given one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import duckdb

from pipelines.settings import Settings


def spark_warehouse(settings: Settings) -> Path:
    return settings.spark_home / "warehouse"


def relation_dir(settings: Settings, schema: str, name: str) -> Path:
    return spark_warehouse(settings) / f"{schema}.db" / name


def spark_relations(settings: Settings, schema: str) -> list[str]:
    """Names of the relations Spark wrote in ``schema`` (tables only: views have no files)."""
    folder = spark_warehouse(settings) / f"{schema}.db"
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def _read_parquet(folder: Path) -> str:
    partitioned = any(p.is_dir() and "=" in p.name for p in folder.iterdir())
    pattern = folder / ("**/*.parquet" if partitioned else "*.parquet")
    return f"read_parquet('{pattern}', hive_partitioning = {str(partitioned).lower()}, union_by_name = true)"


def attach_spark_relations(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    schema: str,
    names: Iterable[str] | None = None,
    column_order: dict[str, Sequence[str]] | None = None,
) -> list[str]:
    """Create DuckDB views ``<schema>.<name>`` over Spark's Parquet files; returns the names.

    A relation whose folder holds no Parquet file (a partitioned table with no partition
    yet) is skipped. ``column_order`` maps a name to its model's columns."""
    con.execute(f"create schema if not exists {schema}")
    attached = []
    for name in names if names is not None else spark_relations(settings, schema):
        folder = relation_dir(settings, schema, name)
        if not folder.is_dir() or not any(folder.rglob("*.parquet")):
            continue
        columns = (column_order or {}).get(name)
        select = ", ".join(f'"{c}"' for c in columns) if columns else "*"
        con.execute(f"create or replace view {schema}.{name} as select {select} from {_read_parquet(folder)}")
        attached.append(name)
    return attached
