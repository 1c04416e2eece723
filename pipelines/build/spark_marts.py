"""Reading what a Spark build wrote, without Spark.

With SEGMENT_MART_ENGINE=spark, dbt-spark writes every relation as plain Parquet under
the warehouse dir (setting ``spark_warehouse``, default ``<home>/spark/warehouse``: the
``spark.sql.warehouse.dir`` of the local target in dbt_project/profiles.yml and of the cluster's
Thrift server, pipelines/build/spark_cluster.py): ``<warehouse>/<schema>.db/<relation>/`` holds the files, and
a relation partitioned by a date (the daily marts, by as_of_date) has one Hive-style
folder per date (``as_of_date=2026-03-30/part-*.parquet``). Spark's Derby metastore
admits one process at a time (and a cluster's metastore is the cluster's), so readers go to the
files directly: DuckDB reads them
as views with the same names (``marts.<mart>``): :func:`pipelines.build.marts.open_marts` does
that for the quality gate and the publish on a Spark night, and the parity test compares
the engines through it (docs/spark.md).

Spark puts partition columns last, and its Parquet types are not DuckDB's (a TIMESTAMP is
written as a UTC instant, which DuckDB reads as TIMESTAMP WITH TIME ZONE): the views select
the model's columns in the model's order, cast to the types of its enforced contract
(:func:`contract_columns`, from dbt's manifest.json), so a mart read from Spark's files has
the same columns and types as the same mart built on DuckDB, and the publish writes the
same BI files from either engine.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import unquote, urlparse

import duckdb

from pipelines.errors import DataProblem
from pipelines.settings import Settings

#: ``(column, data type)`` in the model's order; the type is the contract's (dbt data_type,
#: which DuckDB reads as a type name: string, integer, decimal(18,2), date, boolean, ...)
Columns = Sequence[tuple[str, str | None]]


class WarehouseLocationError(DataProblem, ValueError):
    """Setting spark_warehouse names a location this machine cannot read as files."""


def spark_warehouse(settings: Settings) -> Path:
    """Where Spark writes the relations: setting ``spark_warehouse`` (a path or a ``file://``
    URI, the ``spark.sql.warehouse.dir`` of the local target and of the cluster's Thrift server),
    default ``<home>/spark/warehouse``. The gate and the publish read the marts' Parquet there."""
    location = settings.spark_warehouse
    if not location:
        return settings.spark_home / "warehouse"
    parsed = urlparse(location)
    if parsed.scheme in ("", "file"):
        path = Path(unquote(parsed.path) if parsed.scheme else location).expanduser()
        return path.absolute()
    raise WarehouseLocationError(
        f"SEGMENT_MART_SPARK_WAREHOUSE={location!r}: the gate and the publish read Spark's Parquet as "
        "files, so the warehouse must be a path or a file:// URI mounted on this machine (an object "
        "store would need DuckDB's httpfs extension, which cannot be installed here; docs/spark.md)")


def spark_warehouse_uri(settings: Settings) -> str:
    """:func:`spark_warehouse` as the ``file:`` URI Spark is configured with."""
    return spark_warehouse(settings).as_uri()


def relation_dir(settings: Settings, schema: str, name: str) -> Path:
    return spark_warehouse(settings) / f"{schema}.db" / name


def spark_relations(settings: Settings, schema: str) -> list[str]:
    """Names of the relations Spark wrote in ``schema`` (tables only: views have no files)."""
    folder = spark_warehouse(settings) / f"{schema}.db"
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def latest_partition(settings: Settings, schema: str, name: str, column: str) -> str | None:
    """The greatest value of a Hive partition folder ``<column>=<value>`` holding a Parquet
    file (None when there is none): the folder listing, no file is read."""
    folder = relation_dir(settings, schema, name)
    if not folder.is_dir():
        return None
    prefix = f"{column}="
    values = [p.name[len(prefix):] for p in folder.iterdir()
              if p.is_dir() and p.name.startswith(prefix) and any(p.glob("*.parquet"))]
    return max(values, default=None)


def contract_columns(manifest: Path, schema: str) -> dict[str, list[tuple[str, str | None]]]:
    """``{model: [(column, data_type), ...]}`` for the models of ``schema`` in dbt's
    manifest.json, columns in their YAML order (the order of an enforced contract; data_type
    None where the YAML declares none). Empty when the manifest does not exist."""
    try:
        nodes = json.loads(manifest.read_text()).get("nodes", {})
    except FileNotFoundError:
        return {}
    out: dict[str, list[tuple[str, str | None]]] = {}
    for node in nodes.values():
        if node.get("resource_type") == "model" and node.get("schema") == schema and node.get("columns"):
            out[node["name"]] = [(c, v.get("data_type")) for c, v in node["columns"].items()]
    return out


def _select_list(columns: Columns) -> str:
    def one(column: str, data_type: str | None) -> str:
        quoted = '"' + column.replace('"', '""') + '"'
        return f"cast({quoted} as {data_type}) as {quoted}" if data_type else quoted

    return ", ".join(one(c, t) for c, t in columns)


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
    columns: dict[str, Columns] | None = None,
) -> list[str]:
    """Create DuckDB views ``<schema>.<name>`` over Spark's Parquet files; returns the names.

    A relation whose folder holds no Parquet file (a partitioned table with no partition
    yet) is skipped. ``columns`` maps a name to its model's ``(column, type)`` (the view
    selects and casts them, see :func:`contract_columns`); ``column_order`` to its column
    names only (selected as Spark wrote them)."""
    con.execute(f"create schema if not exists {schema}")
    attached = []
    for name in names if names is not None else spark_relations(settings, schema):
        folder = relation_dir(settings, schema, name)
        typed = (columns or {}).get(name)
        if not typed and (column_order or {}).get(name):
            typed = [(c, None) for c in (column_order or {})[name]]
        if not folder.is_dir():
            continue
        if not any(folder.rglob("*.parquet")):
            # A partitioned table with no partition (a night with no row, e.g. no signal fired)
            # has a folder and no file: an empty view with the contract's columns, as on DuckDB.
            if typed and all(t for _, t in typed):
                empty = ", ".join(f'cast(null as {t}) as "{c}"' for c, t in typed)
                con.execute(f"create or replace view {schema}.{name} as select {empty} where false")
                attached.append(name)
            continue
        select = _select_list(typed) if typed else "*"
        con.execute(f"create or replace view {schema}.{name} as select {select} from {_read_parquet(folder)}")
        attached.append(name)
    return attached
