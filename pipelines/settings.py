"""Typed settings: the one place where paths and run-time knobs are configured.

Every field can be set by an environment variable named ``SEGMENT_MART_<FIELD>``
(for example ``SEGMENT_MART_LANDING_DIR``) and most CLI commands accept a flag that
overrides it. Business rules (tiers, thresholds, weights, targets, costs) are not
here: they live in the dbt project (``dbt_project/dbt_project.yml`` vars and seeds).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from pipelines.contract import ENTITIES, Entity, check_in_use, default_in_use

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Paths and run-time options for one installation of the segment mart."""

    model_config = SettingsConfigDict(env_prefix="SEGMENT_MART_", extra="ignore")

    home: Path = Field(
        default=PROJECT_ROOT / "var",
        description="Root for everything the pipeline writes; other paths default below it.",
    )
    landing_dir: Path | None = Field(
        default=None, description="Where extracts land: <landing>/<run_date>/<source>/<entity>.<ext>."
    )
    lake_dir: Path | None = Field(
        default=None,
        description="The raw lake: the night's accepted rows as Parquet, plus the load audit and "
        "quarantine (<lake>/raw/..., layout in pipelines/intake/lake.py). Read by dbt on any engine.",
    )
    warehouse_path: Path | None = Field(
        default=None, description="The working DuckDB warehouse (dbt models; the raw layer is the lake)."
    )
    temp_dir: Path | None = Field(
        default=None, description="Scratch space: DuckDB spill files, ingestion staging (default <home>/tmp)."
    )
    published_dir: Path | None = Field(
        default=None, description="Where the last good publish lives (DuckDB file, Parquet, manifest)."
    )
    quality_dir: Path | None = Field(
        default=None, description="Per-run quality reports (JSON and HTML)."
    )
    mappings_dir: Path | None = Field(
        default=None,
        description="Mapping files (YAML) that turn tools' exports into contract files, one per entity "
        "(docs/mappings.md); default <home>/mappings.",
    )
    dbt_project_dir: Path = Field(default=PROJECT_ROOT / "dbt_project")
    expectations_dir: Path = Field(default=PROJECT_ROOT / "expectations")
    run_date: dt.date | None = Field(
        default=None, description="The as-of date of the run; the CLI's --run-date overrides it."
    )
    entities_in_use: Annotated[tuple[str, ...] | None, NoDecode] = Field(
        default=None,
        description="The entities the company delivers, as <source>/<entity> (comma separated in the "
        "environment), e.g. crm/accounts,crm/support_cases,billing/subscriptions,usage/events. An entity "
        "not listed is off: its file may be absent or header-only, nothing of it is loaded, and the health "
        "components fed only by it are missing for every account. crm/accounts and billing/subscriptions "
        "are always in use. Default: every entity of the contract.",
    )
    max_quarantine_share: float = Field(
        default=0.02,
        ge=0.0,
        le=1.0,
        description="Share of an entity's rows (per file) that may be quarantined before the night fails.",
    )
    max_event_lag_hours: float = Field(
        default=48.0,
        gt=0,
        description="Freshness: the newest usage event may be at most this old at the end of the run date.",
    )
    future_event_tolerance_hours: float = Field(
        default=24.0,
        ge=0,
        description="Events dated more than this after the end of the run date are quarantined as future-dated.",
    )
    volume_spike_factor: float = Field(
        default=10.0,
        gt=1,
        description="Warn when an entity's rows read exceed this multiple of the median of recent nights.",
    )
    duckdb_memory_limit: str = Field(
        default="2GB",
        description="DuckDB memory_limit for ingestion, intake checks and dbt (spills to temp_dir beyond it).",
    )
    duckdb_threads: int | None = Field(
        default=None, ge=1, description="DuckDB threads for ingestion and dbt (default: the machine's cores)."
    )
    duckdb_preserve_insertion_order: bool = Field(
        default=False,
        description="DuckDB preserve_insertion_order; off lets DuckDB stream large results in bounded memory.",
    )
    keep_releases: int = Field(default=7, ge=1, description="Published releases kept for rollback.")
    quality_batch_rows: int = Field(
        default=1_000_000, ge=1,
        description="Most rows the gate hands Great Expectations in one DataFrame (partitions are batched).",
    )
    published_storage_version: str = Field(
        default="v1.0.0",
        description="DuckDB storage version of the published file: readable by DuckDB >= this version "
        "(BI tools bundle 1.x drivers).",
    )
    dbt_threads: int = Field(default=1, ge=1, description="dbt threads (DuckDB: one writer).")
    engine: Literal["duckdb", "spark"] = Field(
        default="duckdb",
        description="Where dbt builds the night: the embedded DuckDB warehouse or Apache Spark "
        "(dbt target of the same name in dbt_project/profiles.yml; docs/spark.md).",
    )
    dbt_target: str | None = Field(
        default=None,
        description="dbt target of dbt_project/profiles.yml; default: the engine's name.",
    )
    dbt_build_exclude: str | None = Field(
        default=None,
        description="dbt node selection left out of the night's `dbt build` (dbt --exclude syntax, "
        "space separated), e.g. `test_name:not_null test_name:unique` where those tests cost more "
        "than they bring (each data test is a job on Spark); nothing by default.",
    )
    spark_master: str = Field(
        default="local[2]",
        description="Spark master of the local `session` target (local[N] = N cores in one JVM).",
    )
    spark_driver_memory: str = Field(
        default="2g", description="Heap of the local Spark driver JVM (spark.driver.memory)."
    )
    spark_warehouse: str | None = Field(
        default=None,
        description="Where Spark writes the relations (spark.sql.warehouse.dir), a path or file:// URI: "
        "the local target's and the cluster Thrift server's; the gate and the publish read the marts "
        "there (default <home>/spark/warehouse).",
    )
    spark_thrift_host: str = Field(
        default="127.0.0.1", description="Host of the Spark Thrift server (the spark_thrift dbt target)."
    )
    spark_thrift_port: int = Field(default=10000, ge=1, le=65535, description="Port of the Spark Thrift server.")
    spark_thrift_threads: int = Field(
        default=4, ge=1, description="dbt threads on the spark_thrift target (concurrent statements)."
    )
    spark_master_port: int = Field(
        default=7077, ge=1, le=65535, description="Port of the standalone Spark master (segment-mart spark-cluster)."
    )
    spark_workers: int = Field(default=2, ge=1, description="Spark workers the cluster starts (one JVM each).")
    spark_worker_cores: int = Field(default=1, ge=1, description="Cores each Spark worker offers (one executor each).")
    spark_executor_memory: str = Field(
        default="768m", description="Heap of each executor JVM (the memory each worker offers)."
    )
    spark_thrift_driver_memory: str = Field(
        default="2g", description="Heap of the Thrift server JVM (the driver: plans every statement, holds the metastore)."
    )
    spark_daemon_memory: str = Field(
        default="256m", description="Heap of the Spark master and worker daemon JVMs (they only schedule)."
    )
    outbound_config: Path = Field(
        default=PROJECT_ROOT / "config" / "outbound.yml",
        description="What leaves the mart: the CRM write-back and the alerts (docs/outbound.md).",
    )

    @field_validator("entities_in_use", mode="before")
    @classmethod
    def _split_entities(cls, value: object) -> object:
        """The environment gives one string: names separated by commas or spaces."""
        if isinstance(value, str):
            return tuple(part for part in re.split(r"[,\s]+", value) if part)
        return value

    @field_validator("entities_in_use")
    @classmethod
    def _known_entities(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return None if value is None else check_in_use(value)

    @field_validator(
        "home", "landing_dir", "lake_dir", "warehouse_path", "temp_dir", "published_dir", "quality_dir",
        "mappings_dir", "dbt_project_dir", "expectations_dir", "outbound_config",
    )
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        """Relative paths are taken from the current directory, once: dbt and Airflow tasks
        run in other working directories."""
        return None if value is None else Path(value).expanduser().absolute()

    @cached_property
    def landing(self) -> Path:
        return self.landing_dir or self.home / "landing"

    @cached_property
    def lake(self) -> Path:
        return self.lake_dir or self.home / "lake"

    @cached_property
    def mappings(self) -> Path:
        return self.mappings_dir or self.home / "mappings"

    @cached_property
    def temp(self) -> Path:
        return self.temp_dir or self.home / "tmp"

    @cached_property
    def threads(self) -> int:
        """DuckDB threads: the setting, else the cores this process may use."""
        if self.duckdb_threads:
            return self.duckdb_threads
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not Linux
            return max(1, os.cpu_count() or 1)

    @cached_property
    def warehouse(self) -> Path:
        return self.warehouse_path or self.home / "warehouse" / "segment_mart.duckdb"

    @cached_property
    def published(self) -> Path:
        return self.published_dir or self.home / "published"

    @cached_property
    def quality(self) -> Path:
        return self.quality_dir or self.home / "quality"

    @cached_property
    def spark_home(self) -> Path:
        """Everything the local Spark session writes: warehouse (the dbt relations as
        Parquet), the Derby metastore, scratch space and logs."""
        return self.home / "spark"

    @cached_property
    def in_use(self) -> frozenset[str]:
        """Qualified names (``crm/accounts``) of the entities in use (setting ``entities_in_use``)."""
        return frozenset(self.entities_in_use if self.entities_in_use is not None else default_in_use())

    def is_in_use(self, entity: Entity) -> bool:
        return entity.qualified in self.in_use

    @cached_property
    def entities_in_use_list(self) -> tuple[Entity, ...]:
        """The contract's entities that are in use, in the contract's order."""
        return tuple(e for e in ENTITIES if e.qualified in self.in_use)

    @cached_property
    def entities_off(self) -> tuple[Entity, ...]:
        """The contract's entities that are not in use, in the contract's order."""
        return tuple(e for e in ENTITIES if e.qualified not in self.in_use)

    def drop_dir(self, run_date: dt.date) -> Path:
        """The landing folder of one night's drop."""
        return self.landing / run_date.isoformat()


def get_settings(**overrides: object) -> Settings:
    """Settings from the environment, with explicit overrides (CLI flags) applied on top."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**clean)
