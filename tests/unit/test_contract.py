"""The contract is one source of truth: its page and the dbt sources agree with it."""

from __future__ import annotations

from pathlib import Path

import yaml

from pipelines.contract import (
    DUCKDB_TYPES,
    ENTITIES,
    FILE_FORMATS,
    LOAD_METADATA_COLUMNS,
    SNAPSHOT_METADATA_COLUMNS,
    SOURCES,
    SQL_TYPES,
    as_json,
    as_markdown,
    get_entity,
)

ROOT = Path(__file__).resolve().parents[2]


def test_documentation_page_is_generated_from_the_contract() -> None:
    page = (ROOT / "docs" / "extract-contract.md").read_text()
    assert page == as_markdown(), "run: segment-mart contract --markdown > docs/extract-contract.md"


def test_dbt_sources_are_generated_from_the_contract() -> None:
    """The committed sources file is what the contract generates (every entity, column, type,
    description, lake path and grain test), never a hand edit."""
    from pipelines.build.dbt_sources import COMMAND, as_yaml

    committed = (ROOT / "dbt_project/models/staging/_staging__sources.yml").read_text()
    assert committed == as_yaml(), f"the dbt sources are stale: run `{COMMAND}`"
    sources = yaml.safe_load(committed)
    (raw,) = [s for s in sources["sources"] if s["name"] == "raw"]
    assert [t["name"] for t in raw["tables"]] == [e.raw_table for e in ENTITIES]


def test_dbt_sources_declare_the_contract_types() -> None:
    """An entity that is off is an empty relation of its source's declared columns and types
    (dbt_project/macros/lake/entities_in_use.sql): they must be the contract's."""
    sources = yaml.safe_load((ROOT / "dbt_project/models/staging/_staging__sources.yml").read_text())
    (raw,) = [s for s in sources["sources"] if s["name"] == "raw"]
    declared = {t["name"]: {c["name"]: c.get("data_type") for c in t.get("columns", [])} for t in raw["tables"]}
    for entity in ENTITIES:
        expected = {c.name: SQL_TYPES[c.type] for c in entity.columns}
        metadata = LOAD_METADATA_COLUMNS | (SNAPSHOT_METADATA_COLUMNS if entity.kind == "snapshot" else {})
        expected |= {name: kind.lower().replace("varchar", "string") for name, kind in metadata.items()}
        assert declared[entity.raw_table] == expected, entity.raw_table


def test_issue_minimum_columns_are_in_the_contract() -> None:
    minimum = {
        "crm/accounts": "account_id account_name industry employee_count country created_date csm_owner_id "
        "is_marquee_logo is_reference is_partner parent_account_id",
        "crm/activities": "activity_id account_id activity_type occurred_at is_customer_responded",
        "crm/support_cases": "case_id account_id opened_at closed_at priority status csat",
        "crm/nps_responses": "response_id account_id responded_at score",
        "billing/subscriptions": "subscription_id account_id plan product_line start_date end_date "
        "billing_interval amount currency seats",
        "billing/invoices": "invoice_id account_id issued_date due_date amount currency status paid_date",
        "usage/events": "event_id account_id user_id event_name feature occurred_at",
    }
    for qualified, names in minimum.items():
        entity = get_entity(*qualified.split("/"))
        assert [c.name for c in entity.columns][: len(names.split())] == names.split()


def test_contract_is_well_formed() -> None:
    assert SOURCES == ("crm", "billing", "usage")
    assert FILE_FORMATS == ("csv", "parquet", "jsonl")
    for entity in ENTITIES:
        names = [c.name for c in entity.columns]
        assert len(names) == len(set(names))
        assert set(entity.key_columns) <= set(names)
        if len(entity.key_columns) == 1:  # a composite key (daily counts) may hold nulls: the account or the subscription
            assert entity.column(entity.key).required
        assert all(c.type in DUCKDB_TYPES for c in entity.columns)
        for check in entity.row_checks:
            assert check.column in names
    assert {e["raw_table"] for e in as_json()} == {f"raw.{e.raw_table}" for e in ENTITIES}


def test_configuration_page_lists_every_setting() -> None:
    from pipelines.settings import Settings

    page = (ROOT / "docs" / "configuration.md").read_text()
    for name in Settings.model_fields:
        assert f"`SEGMENT_MART_{name.upper()}`" in page, name
