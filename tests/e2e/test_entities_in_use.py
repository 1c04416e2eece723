"""A company without NPS, CS activities or invoices and with a CRM that has no employee counts or
advocacy flags (issue 18, items 1 and 2): its night publishes through the same code the DAG
calls (nightly.run_night), the health components of the absent entities are missing for every
account with their weight redistributed, the defaults are visible, and the report, the manifest
and the quarantine report say what was off."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import duckdb
import pytest
import yaml

from pipelines import nightly
from pipelines.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parents[2]
IN_USE = ("crm/accounts", "crm/support_cases", "billing/subscriptions", "usage/events")
OFF = ["billing/invoices", "crm/activities", "crm/nps_responses"]
DEFAULTED = ("employee_count", "is_marquee_logo", "is_reference", "is_partner")


def _without_columns(path: Path, dropped: tuple[str, ...]) -> None:
    with path.open(newline="") as fh:
        records = list(csv.DictReader(fh))
    kept = [c for c in records[0] if c not in dropped]
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, kept, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(records)


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, dt.date]:
    from pipelines.generate import generate

    settings = get_settings(home=tmp_path_factory.mktemp("entities_in_use") / "home", entities_in_use=IN_USE)
    summary = generate(settings.landing, accounts=20, start_date=dt.date(2025, 6, 1), days=200, drop_days=1, seed=3)
    night = dt.date.fromisoformat(str(summary.run_dates[-1]))
    drop = settings.drop_dir(night)
    (drop / "crm" / "nps_responses.csv").unlink()  # absent
    activities = drop / "crm" / "activities.csv"  # header-only, as an export of an empty object
    activities.write_text(activities.read_text().splitlines()[0] + "\n")
    (drop / "billing" / "invoices.csv").unlink()
    _without_columns(drop / "crm" / "accounts.csv", DEFAULTED)
    nightly.run_night(settings, night)
    return settings, night


def _published(settings: Settings, sql: str) -> list[tuple]:
    con = duckdb.connect(str(settings.published / "segment_mart.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_the_night_publishes_and_says_what_was_off(company: tuple[Settings, dt.date]) -> None:
    settings, night = company
    manifest = json.loads((settings.published / "manifest.json").read_text())
    assert manifest["run_date"] == night.isoformat()
    intake = manifest["quality"]["intake"]
    assert intake["entities_off"] == OFF
    assert sorted(intake["columns_defaulted"]["crm/accounts"]) == sorted(DEFAULTED)
    quarantine_report = json.loads((settings.quality / night.isoformat() / "quarantine_report.json").read_text())
    assert quarantine_report["intake"]["entities_off"] == OFF
    report = (settings.published / "report.html").read_text()
    assert "Data behind this report" in report
    for name in OFF:
        assert f"{name} is not in use" in report
    assert "has no column <code>employee_count</code>" in report


def test_health_components_of_the_entities_off_are_missing_and_their_weight_redistributed(
    company: tuple[Settings, dt.date],
) -> None:
    settings, night = company
    weights = yaml.safe_load((ROOT / "dbt_project" / "dbt_project.yml").read_text())["vars"]["health_weights"]
    scored = _published(settings, f"""
        select account_id, health_score, product_usage_score, cs_engagement_score, support_score,
            billing_score, sentiment_score, missing_components
        from marts.fct_account_health_daily
        where as_of_date = date '{night}' and account_status = 'live'""")
    assert len(scored) >= 10
    for account, health, usage, cs, support, billing, sentiment, missing in scored:
        assert (cs, billing, sentiment) == (None, None, None), account
        assert {"billing", "cs_engagement", "sentiment"} <= set(missing.split(", ")), account
        present = [(weights[name], float(score)) for name, score in
                   (("product_usage", usage), ("support", support)) if score is not None]
        if not present:
            assert health is None
            continue
        expected = sum(w * s for w, s in present) / sum(w for w, _ in present)
        assert abs(float(health) - expected) <= 0.15, (account, health, expected)
    # the redistribution lets accounts be healthy: nothing is scored as if the data were zero
    assert any(float(h) >= 70 for _, h, *_ in scored if h is not None)


def test_defaults_are_visible_and_segments_of_the_entities_off_are_unknown(
    company: tuple[Settings, dt.date],
) -> None:
    settings, _ = company
    found = _published(settings, """
        select company_size_band, engagement_segment, bool_or(is_marquee_logo or is_reference or is_partner),
            count(*)
        from marts.dim_accounts group by all""")
    assert [(band, engagement, flags) for band, engagement, flags, _ in found] == [("unknown", "unknown", False)]
    growth = {g for (g,) in _published(settings, "select distinct growth_potential from marts.dim_accounts "
                                                 "where account_status = 'live'")}
    assert "high" not in growth  # an unknown licence share is never taken as 0 (= "3x room")
