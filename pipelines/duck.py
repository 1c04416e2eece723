"""DuckDB in bounded memory: the one place that turns settings into DuckDB configuration
(the connections themselves are opened by :mod:`pipelines.warehouse`).

Ingestion, the intake checks and dbt (through ``dbt_project/profiles.yml``, which
``pipelines/build/dbt.py`` feeds from :func:`dbt_env`) run DuckDB with the same knobs:

* ``memory_limit`` (``SEGMENT_MART_DUCKDB_MEMORY_LIMIT``): DuckDB's buffer manager stays under
  it and spills sorts, joins and aggregates to ``temp_directory`` beyond it. Without it DuckDB
  takes 80% of the machine's RAM, which is what made a year of usage events grow past 14 GB.
* ``temp_directory`` (``<SEGMENT_MART_TEMP_DIR>/duckdb``): where the spill files go.
* ``threads`` (``SEGMENT_MART_DUCKDB_THREADS``, default: the cores this process may use).
* ``preserve_insertion_order`` (``SEGMENT_MART_DUCKDB_PRESERVE_INSERTION_ORDER``, default
  false): with it on, DuckDB must buffer results to keep their order, which defeats streaming.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipelines.settings import Settings


def spill_dir(settings: Settings) -> Path:
    return settings.temp / "duckdb"


def config(settings: Settings) -> dict[str, Any]:
    """DuckDB configuration for one process of the pipeline."""
    return {
        "memory_limit": settings.duckdb_memory_limit,
        "threads": settings.threads,
        "temp_directory": str(spill_dir(settings)),
        "preserve_insertion_order": settings.duckdb_preserve_insertion_order,
    }


def dbt_env(settings: Settings) -> dict[str, str]:
    """Environment variables ``dbt_project/profiles.yml`` and the models read (DuckDB settings, lake
    root, the entities that are off)."""
    spill_dir(settings).mkdir(parents=True, exist_ok=True)
    return {
        "SEGMENT_MART_DBT_LAKE": str(settings.lake),
        "SEGMENT_MART_DBT_DUCKDB_MEMORY_LIMIT": settings.duckdb_memory_limit,
        "SEGMENT_MART_DBT_DUCKDB_THREADS": str(settings.threads),
        "SEGMENT_MART_DBT_DUCKDB_TEMP_DIR": str(spill_dir(settings)),
        "SEGMENT_MART_DBT_DUCKDB_PRESERVE_INSERTION_ORDER": str(settings.duckdb_preserve_insertion_order).lower(),
        # the raw tables of the entities not in use (dbt_project/macros/lake/entities_in_use.sql)
        "SEGMENT_MART_DBT_ENTITIES_OFF": ",".join(e.raw_table for e in settings.entities_off),
    }
