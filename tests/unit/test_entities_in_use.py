"""Entities in use (issue 18, item 1): a company declares once which entities it delivers
(setting ``entities_in_use``); an entity that is off may be absent or header-only without
failing the night, the ones in use (accounts and subscriptions always) may not."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from pipelines.contract import ENTITIES, default_in_use, is_other_shape
from pipelines.intake.ingest import ingest
from pipelines.ops import nightly
from pipelines.quality import QualityGateFailed, check_quarantine
from pipelines.quality.intake import run_intake_checks
from pipelines.settings import Settings
from tests.drops import VALID_ROWS, make_drop, write_csv
from tests.raw_lake import rows

D1 = dt.date(2026, 1, 5)
ALWAYS = tuple(e.qualified for e in ENTITIES if e.always_in_use)  # the contract says which the mart needs
NO_NPS_ACTIVITIES_INVOICES = (*ALWAYS, "crm/support_cases", "usage/events")


def _off(in_use: tuple[str, ...]) -> list[str]:
    """The contract's entities outside ``in_use``, in the contract's order: an entity added to the
    contract (off by default or not) joins this list without a test edit."""
    return [e.qualified for e in ENTITIES if e.qualified not in in_use]


def _settings(settings: Settings, in_use: tuple[str, ...] | None) -> Settings:
    return Settings(home=settings.home, landing_dir=settings.landing, entities_in_use=in_use)


def _header_only(drop, qualified: str) -> None:
    write_csv(drop / f"{qualified}.csv", [], list(VALID_ROWS[qualified][0]))


def test_the_setting_reads_a_comma_separated_list_and_refuses_what_the_mart_cannot_do_without(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert {"crm/accounts", "billing/subscriptions"} <= set(ALWAYS)
    monkeypatch.setenv("SEGMENT_MART_ENTITIES_IN_USE", "USAGE/events, " + ",".join(ALWAYS))
    settings = Settings()
    assert settings.entities_in_use == tuple(e.qualified for e in ENTITIES
                                             if e.qualified in {*ALWAYS, "usage/events"})  # contract order
    off = [e.qualified for e in settings.entities_off]
    assert off == _off(settings.entities_in_use)
    assert {"crm/activities", "crm/support_cases", "crm/nps_responses", "billing/invoices",
            "usage/daily_counts"} <= set(off)  # the entities the contract has today
    with pytest.raises(ValidationError, match="crm/accounts cannot be switched off"):
        Settings(entities_in_use=("billing/subscriptions",))
    with pytest.raises(ValidationError, match="unknown entity crm/nps: the contract knows"):
        Settings(entities_in_use=("crm/accounts", "billing/subscriptions", "crm/nps"))
    monkeypatch.delenv("SEGMENT_MART_ENTITIES_IN_USE")
    assert Settings().in_use == set(default_in_use())  # unset: every entity in use by default


def test_header_only_snapshots_of_entities_in_use_fail_the_night(settings: Settings) -> None:
    """The behaviour a company without NPS hit: every entity in use, a header-only NPS file fails."""
    drop = make_drop(settings.landing, D1)
    _header_only(drop, "crm/nps_responses")
    ingest(settings, D1)
    with pytest.raises(QualityGateFailed, match="snapshot crm/nps_responses has rows"):
        check_quarantine(settings, D1).raise_if_failed()


def test_entities_off_may_be_absent_or_header_only_and_are_not_loaded(settings: Settings) -> None:
    settings = _settings(settings, NO_NPS_ACTIVITIES_INVOICES)
    drop = make_drop(settings.landing, D1)
    (drop / "crm" / "nps_responses.csv").unlink()
    _header_only(drop, "crm/activities")
    # delivered although off: not read (its bad value would otherwise be quarantined)
    write_csv(drop / "billing" / "invoices.csv", [dict(VALID_ROWS["billing/invoices"][0], amount="oops")])
    nightly.check_extracts(settings, D1)
    ingest(settings, D1)
    result = check_quarantine(settings, D1).raise_if_failed()
    audit = {r[0]: r[1:] for r in rows(settings, "select source || '/' || entity, status, file, error "
                                                   "from raw._load_audit where status = 'off'")}
    off = _off(NO_NPS_ACTIVITIES_INVOICES)
    assert sorted(audit) == sorted(off) and "usage/daily_counts" in off  # off by default: usage as events
    _, file, error = audit["billing/invoices"]
    assert file == str(drop / "billing" / "invoices.csv") and "not read" in error
    assert audit["crm/nps_responses"][1] is None
    assert rows(settings, "select count(*) from raw._quarantine") == [(0,)]
    assert not (settings.lake / "raw" / "billing" / "invoices").exists()
    (entities,) = [c for c in result.checks if c.name == "entities in use"]
    assert "crm/nps_responses: health component `sentiment` is missing for every account" in entities.message
    assert str(drop / "billing" / "invoices.csv") in entities.message  # delivered anyway, named
    lacking = sorted(q for q in off if not is_other_shape(next(e for e in ENTITIES if e.qualified == q),
                                                           NO_NPS_ACTIVITIES_INVOICES))
    assert {"billing/invoices", "crm/activities", "crm/nps_responses"} <= set(lacking)
    assert "usage/daily_counts" not in lacking  # another shape of usage/events, which is in use
    assert result.summary()["intake"]["entities_off"] == lacking
    # the full gate's intake checks agree: freshness does not ask for the entities off
    freshness = [c for c in run_intake_checks(settings, D1) if c.kind == "freshness"]
    assert all(c.status == "passed" for c in freshness), [c.one_line() for c in freshness]


@pytest.mark.parametrize("qualified", ["crm/accounts", "billing/subscriptions", "crm/support_cases"])
def test_an_entity_in_use_still_fails_the_night_when_it_arrives_empty(settings: Settings, qualified: str) -> None:
    settings = _settings(settings, NO_NPS_ACTIVITIES_INVOICES)
    drop = make_drop(settings.landing, D1)
    _header_only(drop, qualified)
    ingest(settings, D1)
    with pytest.raises(QualityGateFailed, match=f"snapshot {qualified} has rows"):
        check_quarantine(settings, D1).raise_if_failed()


def test_an_entity_in_use_still_fails_the_night_when_its_file_is_missing(settings: Settings) -> None:
    from pipelines.intake.landing import SourceRejected

    settings = _settings(settings, NO_NPS_ACTIVITIES_INVOICES)
    drop = make_drop(settings.landing, D1)
    (drop / "crm" / "support_cases.csv").unlink()
    (drop / "crm" / "nps_responses.csv").unlink()  # off: not named
    with pytest.raises(SourceRejected) as info:
        nightly.check_extracts(settings, D1)
    assert "support_cases" in str(info.value) and "nps_responses" not in str(info.value)


def test_optional_crm_columns_may_be_absent_and_the_reports_name_their_defaults(settings: Settings) -> None:
    drop = make_drop(settings.landing, D1)
    columns = [c for c in VALID_ROWS["crm/accounts"][0]
               if c not in ("employee_count", "is_marquee_logo", "is_reference", "is_partner")]
    write_csv(drop / "crm" / "accounts.csv", VALID_ROWS["crm/accounts"], columns)
    nightly.check_extracts(settings, D1)
    ingest(settings, D1)
    assert rows(settings, "select count(*) from raw.crm__accounts where employee_count is null "
                          "and is_marquee_logo is null and is_reference is null and is_partner is null") == [(3,)]
    result = check_quarantine(settings, D1).raise_if_failed()
    (defaults,) = [c for c in result.checks if c.name == "columns defaulted in crm/accounts"]
    assert "has no column employee_count, is_marquee_logo, is_reference, is_partner" in defaults.message
    assert "company_size_band` is `unknown`" in defaults.message
    intake = result.summary()["intake"]
    assert sorted(intake["columns_defaulted"]["crm/accounts"]) == [
        "employee_count", "is_marquee_logo", "is_partner", "is_reference"]
    html = result.report_html.read_text()
    assert "crm/accounts defaulted: employee_count, is_marquee_logo, is_reference, is_partner" in html
