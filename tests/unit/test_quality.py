"""Quality gate on small hand-made marts: suites, example rows, quarantine, freshness, dbt results."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pipelines.publish import publish
from pipelines.quality import (
    QualityGateFailed,
    check_quarantine,
    load_suites,
    run_quality_gate,
    scaffold_suite,
)
from pipelines.quality.testing import build_demo_warehouse, demo_settings

RUN = dt.date(2026, 1, 5)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def settings(tmp_path):
    return demo_settings(tmp_path)


def failed(result):
    return {(c.mart or c.source, c.name): c for c in result.checks if c.status == "failed"}


def test_clean_night_passes_and_writes_reports(settings):
    build_demo_warehouse(settings, RUN)
    result = run_quality_gate(settings, RUN)
    assert result.passed, result.summary()["failed"]
    assert result.report_json == settings.quality / RUN.isoformat() / "quality_report.json"
    data = json.loads(result.report_json.read_text())
    assert data["passed"] is True
    assert set(data["marts"]) == {
        "dim_accounts", "fct_account_health_daily", "fct_account_tiers_daily",
        "rpt_segment_retention_monthly", "rpt_tier_distribution",
    }
    kinds = {c["kind"] for c in data["results"]}
    assert {"expectation", "schema", "row_count", "reconciliation", "quarantine", "freshness"} <= kinds
    assert "PASSED" in result.report_html.read_text()
    result.raise_if_failed()  # no exception


def test_accepted_values_defect_fails_with_example_rows(settings):
    build_demo_warehouse(settings, RUN, defect="tier")
    result = run_quality_gate(settings, RUN)
    assert not result.passed
    bad = failed(result)
    check = bad[("fct_account_tiers_daily", "expect_column_values_to_be_in_set(assigned_tier)")]
    assert "1 of 20 rows unexpected" in check.message and "'Gold'" in check.message
    assert check.example_rows == [
        {"account_id": "A0003", "as_of_date": "2026-01-05", "assigned_tier": "Gold",
         "tier_number": 4, "tier_score": 23.0, "arr_reporting": 2030.0}
    ]
    assert len(bad) == 1  # nothing else is reported as broken
    report = result.report_html.read_text()
    assert "A0003" in report and "Gold" in report and "FAILED" in report
    with pytest.raises(QualityGateFailed) as exc:
        result.raise_if_failed()
    msg = str(exc.value)
    assert "expect_column_values_to_be_in_set(assigned_tier)" in msg
    assert "fct_account_tiers_daily" in msg and str(result.report_html) in msg


def test_bridge_and_reconciliation_defects_are_named(settings):
    build_demo_warehouse(settings, RUN, defect="bridge")
    bad = failed(run_quality_gate(settings, RUN))
    gap = bad[("rpt_segment_retention_monthly", "expect_column_values_to_be_between(bridge_gap)")]
    assert gap.example_rows[0]["segment_value"] == "Core"
    assert gap.example_rows[0]["bridge_gap"] == -100.0
    rec = bad[("rpt_segment_retention_monthly", "tier segments sum to the total")]
    assert rec.kind == "reconciliation" and rec.observed == 1
    assert rec.example_rows[0]["month"] == "2026-01-01"


def test_grain_violation(settings):
    build_demo_warehouse(settings, RUN, defect="null_key")
    bad = failed(run_quality_gate(settings, RUN))
    assert ("dim_accounts", "grain: account_id is not null") in bad


def test_warning_severity_does_not_fail(settings):
    build_demo_warehouse(settings, RUN)
    import duckdb

    con = duckdb.connect(str(settings.warehouse))
    con.execute("update marts.fct_account_tiers_daily set tier_score = 150 where account_id = 'A0001'")
    con.close()
    result = run_quality_gate(settings, RUN)
    assert result.passed
    (warn,) = result.warnings
    assert warn.name == "expect_column_values_to_be_between(tier_score)"
    assert warn.example_rows[0]["account_id"] == "A0001"


def test_run_date_parameter(settings):
    build_demo_warehouse(settings, RUN)
    bad = failed(run_quality_gate(settings, RUN + dt.timedelta(days=1)))
    assert ("fct_account_tiers_daily", "expect_column_max_to_be_between(as_of_date)") in bad


def test_quarantine_share_above_threshold(settings):
    # 200 of the 1000 rows of billing/subscriptions (10% of the source): shares are per entity
    build_demo_warehouse(settings, RUN, quarantined={"billing": 200})
    early = check_quarantine(settings, RUN)
    assert not early.passed and early.scope == "quarantine"
    (check,) = early.failed_checks
    assert check.source == "billing" and check.observed == pytest.approx(0.2)
    assert "billing/subscriptions" in check.message
    assert "20.00%" in check.message and "threshold 2.00%" in check.message
    assert check.example_rows[0]["reason"] == "does not match ^[A-Z]{2}$"
    assert check.example_rows[0]["line"] == 2
    assert early.report_html.name == "quarantine_report.html"
    assert "does not match" in early.report_html.read_text()
    with pytest.raises(QualityGateFailed, match=r"(?s)quarantine check failed .*billing"):
        early.raise_if_failed()
    # the full gate reports it too; a per-source or per-entity override lets it pass
    assert ("billing", "quarantine share of billing/subscriptions") in failed(run_quality_gate(settings, RUN))
    assert check_quarantine(settings, RUN, thresholds={"billing": 0.2}).passed
    assert check_quarantine(settings, RUN, thresholds={"billing/subscriptions": 0.2}).passed


def test_quarantine_without_ingestion(settings):
    result = check_quarantine(settings, RUN)
    assert not result.passed
    assert "ingestion has not run" in result.failed_checks[0].message


def test_mart_without_suite_and_suite_without_mart(settings):
    build_demo_warehouse(settings, RUN, defect="extra_mart")
    (settings.expectations_dir / "fct_gone.yml").write_text("mart: fct_gone\nkey: id\n")
    bad = failed(run_quality_gate(settings, RUN))
    assert "fct_unsuited.yml" in bad[("fct_unsuited", "suite exists")].message
    assert "dropped or renamed" in bad[("fct_gone", "mart exists")].message


def test_invalid_suites_are_reported_per_mart(settings):
    build_demo_warehouse(settings, RUN)
    (settings.expectations_dir / "dim_accounts.yml").write_text(textwrap.dedent("""
        mart: dim_accounts
        key: account_id
        expectations:
          - expect_column_values_to_be_purple: {column: account_id}
          - expect_column_values_to_not_be_null: {column: no_such_column}
    """))
    (settings.expectations_dir / "rpt_tier_distribution.yml").write_text("mart: wrong_name\nkey: x\n")
    bad = failed(run_quality_gate(settings, RUN))
    assert "invalid expectation in dim_accounts.yml" in bad[("dim_accounts", "expect_column_values_to_be_purple(account_id)")].message
    assert "no_such_column not found" in bad[("dim_accounts", "expect_column_values_to_not_be_null(no_such_column)")].message
    assert "must equal the file name" in bad[("rpt_tier_distribution", "suite is valid")].message


def test_schema_and_row_count_against_previous_publish(settings):
    build_demo_warehouse(settings, RUN)
    publish(settings, RUN, run_quality_gate(settings, RUN), build_html_report=False)
    nxt = RUN + dt.timedelta(days=1)
    build_demo_warehouse(settings, nxt, defect="schema", accounts=8)
    bad = failed(run_quality_gate(settings, nxt))
    schema = bad[("fct_account_health_daily", "schema vs previous publish")]
    assert "added surprise" in schema.message and "fct_account_health_daily.yml" in schema.message
    rows = [c for (m, _), c in bad.items() if m == "fct_account_health_daily" and c.kind == "row_count"]
    assert rows and "previous publish: 20" in rows[0].name and rows[0].observed == 8
    # declaring the new column makes the change intended: a warning, not a failure
    suite = settings.expectations_dir / "fct_account_health_daily.yml"
    suite.write_text(suite.read_text() + textwrap.dedent("""
        columns: {account_id: VARCHAR, as_of_date: DATE, health_score: DOUBLE, health_status: VARCHAR,
                  surprise: VARCHAR}
    """))
    build_demo_warehouse(settings, nxt, defect="schema")
    result = run_quality_gate(settings, nxt)
    assert result.passed, result.summary()["failed"]
    assert any(c.name == "schema vs previous publish" and c.status == "warning" for c in result.checks)


def test_dbt_run_results(settings, tmp_path):
    build_demo_warehouse(settings, RUN)
    rr = tmp_path / "run_results.json"
    rr.write_text(json.dumps({
        "metadata": {"dbt_version": "1.11.0"},
        "args": {"vars": {"as_of_date": RUN.isoformat()}},
        "results": [
            {"unique_id": "model.segment_mart.dim_accounts", "status": "success", "failures": None},
            {"unique_id": "test.segment_mart.unique_dim_accounts_account_id.1a", "status": "pass", "failures": 0},
            {"unique_id": "test.segment_mart.accepted_values_tier.2b", "status": "fail", "failures": 3,
             "message": "Got 3 results, configured to fail if != 0"},
            {"unique_id": "test.segment_mart.tier_share_warn.3c", "status": "warn", "failures": 1},
            {"unique_id": "model.segment_mart.fct_mrr_movements", "status": "error", "message": "Binder Error"},
        ],
    }))
    result = run_quality_gate(settings, RUN, dbt_run_results=rr)
    bad = failed(result)
    assert "3 failing rows" in bad[(None, "accepted_values_tier")].message
    assert bad[(None, "dbt tests")].message.startswith("1 pass, 1 warn, 1 fail, 0 error")
    assert "Binder Error" in bad[(None, "fct_mrr_movements")].message
    assert [c.name for c in result.warnings] == ["tier_share_warn"]
    rr.write_text(json.dumps({"args": {"vars": {"as_of_date": "2025-12-31"}}, "results": []}))
    assert (None, "dbt run is for this date") in failed(run_quality_gate(settings, RUN, dbt_run_results=rr))
    assert (None, "dbt run results") in failed(run_quality_gate(settings, RUN, dbt_run_results=tmp_path / "nope.json"))


def test_locked_warehouse_is_waited_for_then_raised_as_transient(settings, monkeypatch):
    from pipelines import warehouse

    monkeypatch.setattr(warehouse, "LOCK_WAIT_SECONDS", 1.0)
    build_demo_warehouse(settings, RUN)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
         "print('locked', flush=True); time.sleep(60)", str(settings.warehouse)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(warehouse.WarehouseLocked, match="locked by another process"):
            run_quality_gate(settings, RUN)
    finally:
        holder.kill()
        holder.wait()


def test_scaffold_suite_round_trips(settings):
    build_demo_warehouse(settings, RUN)
    from pipelines.quality.db import connect_read_only
    from pipelines.quality.suites import parse_suite

    con = connect_read_only(settings.warehouse)
    text = scaffold_suite(con, "fct_account_health_daily")
    con.close()
    path = settings.expectations_dir / "fct_account_health_daily.yml"
    path.write_text(text)
    suite = parse_suite(path)
    assert suite.key == ("account_id", "as_of_date")
    assert suite.columns == {"account_id": "VARCHAR", "as_of_date": "DATE", "health_score": "DOUBLE",
                             "health_status": "VARCHAR"}
    assert run_quality_gate(settings, RUN).passed


def test_project_suites_are_valid_and_cover_every_dbt_mart():
    """Every mart model in the dbt project has a valid suite in expectations/ (and vice versa)."""
    suites = load_suites(ROOT / "expectations")
    errors = {m: str(s) for m, s in suites.items() if isinstance(s, Exception)}
    assert not errors
    models = {p.stem for p in (ROOT / "dbt_project" / "models" / "marts").rglob("*.sql")}
    assert not models - set(suites), f"marts without a suite in expectations/: {sorted(models - set(suites))}"
    assert not set(suites) - models, f"suites without a dbt mart: {sorted(set(suites) - models)}"
    from pipelines.quality.suites import build_gx_suite

    for mart, suite in suites.items():  # every expectation builds (known type, valid kwargs)
        assert build_gx_suite(suite, previous_rows=100).problems == [], mart


def test_importing_the_package_stays_light():
    """The DAG file imports these modules while it is parsed: no GE, pandas or DuckDB then."""
    code = ("import sys; import pipelines.quality, pipelines.publish, pipelines.report; "
            "print(sorted(m for m in ('great_expectations', 'pandas', 'duckdb', 'pyarrow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
