"""``dbt_project/models/staging/_staging__sources.yml``, generated from the extract contract.

The dbt source ``raw`` declares one table per contract entity (:data:`pipelines.contract.ENTITIES`)
with the contract's columns, types and descriptions, the loader's metadata columns, the table's
lake path and its grain test; nothing in the file is written by hand. Regenerate it after
changing the contract::

    segment-mart contract --dbt-sources > dbt_project/models/staging/_staging__sources.yml

(tests/unit/test_contract.py fails while the committed file differs.)
"""

from __future__ import annotations

from typing import Any

from pipelines.contract import (
    ENTITIES,
    LOAD_METADATA_COLUMNS,
    METADATA_DESCRIPTIONS,
    SNAPSHOT_METADATA_COLUMNS,
    SQL_TYPES,
    Entity,
)

COMMAND = "segment-mart contract --dbt-sources > dbt_project/models/staging/_staging__sources.yml"

HEADER = f"""\
# Generated from the extract contract (pipelines/contract.py) by pipelines/build/dbt_sources.py:
#   {COMMAND}
# Do not edit by hand: a test fails while this file differs from what that command prints.
#
# Every raw table is external Parquet in the raw lake (layout: pipelines/intake/lake.py; the
# pipeline sets SEGMENT_MART_DBT_LAKE). dbt-duckdb renders source() as the read_parquet call
# of `external_location`, with ${{lake_path}} from the table's meta; `_run_date` comes from the
# partition folder, so a filter on it reads only the partitions it names (a test keeps the
# expression equal to pipelines.intake.lake.relation_sql). Every data test of a raw table checks the
# night's drop only (partition_date_column: macros/generic_tests/get_where_subquery.sql adds
# `_run_date = <as-of date>` at run time). The data tests of an entity that may be switched off
# are disabled while it is off (SEGMENT_MART_DBT_ENTITIES_OFF, pipelines/duck.py dbt_env).
"""

#: dbt-duckdb's template for every raw table (``formatter: template``).
EXTERNAL_LOCATION = (
    "read_parquet('{{ env_var(\"SEGMENT_MART_DBT_LAKE\", \"../var/lake\") }}/raw/${lake_path}/_run_date=*/*.parquet', "
    "hive_partitioning = true, union_by_name = true)"
)

#: What a table's description adds to the contract's, by kind of entity.
KIND_NOTE = {
    "snapshot": "All ingested run dates are kept; one snapshot per `_run_date`.",
    "events": "",
    "aggregates": "",
}


def _metadata_type(kind: str) -> str:
    return kind.lower().replace("varchar", "string")


def _enabled(entity: Entity) -> dict[str, Any]:
    """The config that disables a data test while the entity is off (none when always in use)."""
    if entity.always_in_use:
        return {}
    return {"config": {"enabled": f"{{{{ '{entity.raw_table}' not in "
                                  "env_var('SEGMENT_MART_DBT_ENTITIES_OFF', '').split(',') }}"}}


def _description(entity: Entity) -> str:
    parts = [entity.description, KIND_NOTE[entity.kind]]
    if not entity.in_use_by_default:
        parts.append("Off by default (setting entities_in_use).")
    return " ".join(p for p in parts if p)


def _table(entity: Entity) -> dict[str, Any]:
    columns: list[dict[str, Any]] = []
    events_key = entity.kind == "events"
    for c in entity.columns:
        column: dict[str, Any] = {"name": c.name, "data_type": SQL_TYPES[c.type],
                                  "description": c.description or f"{c.name} ({c.type})"}
        if events_key and c.name in entity.key_columns:
            # events are deduplicated across drops: the key is unique in the whole table
            enabled = _enabled(entity)
            column["data_tests"] = [{test: enabled} if enabled else test for test in ("unique", "not_null")]
        columns.append(column)
    metadata = LOAD_METADATA_COLUMNS | (SNAPSHOT_METADATA_COLUMNS if entity.kind == "snapshot" else {})
    columns += [{"name": name, "data_type": _metadata_type(kind), "description": METADATA_DESCRIPTIONS[name]}
                for name, kind in metadata.items()]
    table: dict[str, Any] = {
        "name": entity.raw_table,
        "config": {"meta": {"lake_path": f"{entity.source}/{entity.name}"}},
        "description": _description(entity),
        "columns": columns,
    }
    if not events_key:  # one row per key in each drop
        table["data_tests"] = [{"unique_combination_of_columns": {
            "arguments": {"columns": ["_run_date", *entity.key_columns]}, **_enabled(entity)}}]
    return table


def sources() -> dict[str, Any]:
    """The sources file as data."""
    return {
        "version": 2,
        "sources": [{
            "name": "raw",
            "description": "The raw lake written by `segment-mart ingest` (pipelines/intake/ingest.py), typed per the "
                           "extract contract (docs/extract-contract.md).",
            "schema": "raw",
            "config": {"meta": {"external_location": EXTERNAL_LOCATION, "formatter": "template",
                                "partition_date_column": "_run_date"}},
            "tables": [_table(e) for e in ENTITIES],
        }],
    }


def as_yaml() -> str:
    """The text of ``_staging__sources.yml``."""
    import yaml

    return HEADER + yaml.safe_dump(sources(), sort_keys=False, width=110, allow_unicode=True)
