"""Quality gate on the marts dbt really builds (the ``real_nights`` session fixture): the night's
partition is what gets validated, a corrupted partition or a failed dbt test blocks the night,
suites and schema drift are reported per mart, the result carries a fingerprint, and a mart's
column facts (types, nullability, keys, allowed values) are read from the dbt model YAML only:
a suite that restates one and disagrees fails the night."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from pipelines.build.dbt import run_results_path, target_dir
from pipelines.quality import QualityGateFailed, load_suites, run_quality_gate, scaffold_suite
from pipelines.quality.declared import load_mart_models
from pipelines.quality.gate import read_gate_result
from pipelines.release.publish import publish
from pipelines.settings import get_settings
from tests.warehouse import gate, sql

ROOT = Path(__file__).resolve().parents[2]
DAILY = ("fct_account_actions_daily", "fct_account_health_daily", "fct_account_segments_daily", "fct_account_signals",
         "fct_account_tiers_daily")
#: The marts keyed by a month (or a quarter's first month), validated by month.
MONTHLY = ("fct_mrr_account_monthly", "fct_mrr_movements", "rpt_cohort_retention", "rpt_segment_retention_monthly",
           "rpt_segment_retention_quarterly", "rpt_segment_unit_economics")


def failed(result):
    return {(c.mart or c.source, c.name): c for c in result.checks if c.status == "failed"}


def add_expectations(suite: Path, text: str) -> None:
    """Put ``text`` (YAML list items) at the top of the suite's ``expectations:`` list."""
    body = suite.read_text()
    assert "\nexpectations:\n" in body, suite
    items = textwrap.indent(textwrap.dedent(text).strip("\n"), "  ")
    suite.write_text(body.replace("\nexpectations:\n", "\nexpectations:\n" + items + "\n", 1))


def with_suites(home, tmp_path):
    """Settings of ``home`` with a private, editable copy of the expectation suites."""
    suites = tmp_path / "expectations"
    shutil.copytree(ROOT / "expectations", suites)
    return get_settings(home=home.settings.home, expectations_dir=suites)


def test_the_nightly_gate_validated_only_the_nights_partition(real_nights):
    result = read_gate_result(real_nights.settings, real_nights.last)
    assert result is not None and result.passed, result and result.summary()["failed"]
    # the second night: only its own partition of each daily mart was new, so only it was validated,
    # and of each monthly mart only the month in progress (asserted in the next test)
    assert {m: v for m, v in result.validated.items() if m in DAILY} == {m: [real_nights.last.isoformat()] for m in DAILY}
    assert set(result.validated) == set(DAILY) | set(MONTHLY)
    fingerprint = result.fingerprint["marts"]
    assert set(fingerprint) == set(result.marts)
    for mart in DAILY:
        parts = fingerprint[mart]["partitions"]
        assert sorted(parts) == [d.isoformat() for d in real_nights.run_dates]
        assert sum(n for n, _ in parts.values()) == result.marts[mart]
    assert "hash" in fingerprint["dim_accounts"] and result.fingerprint["dbt_run_results"]
    data = json.loads(result.report_json.read_text())
    kinds = {c["kind"] for c in data["results"]}
    assert {"expectation", "schema", "row_count", "reconciliation", "quarantine", "freshness", "dbt_test"} <= kinds
    assert "PASSED" in result.report_html.read_text()
    # the partitioned marts' expectations ran on the night's rows only (one per account)
    tiers = next(c for c in result.checks if c.mart == "fct_account_tiers_daily"
                 and c.name == "expect_column_values_to_be_between(tier_score)")
    assert tiers.details["partitions"] == [real_nights.last.isoformat()]
    # every mart: its schema against the dbt contract, and the dbt tests declared on it ran tonight
    for mart in result.marts:
        mine = {c.name: c for c in result.checks if c.mart == mart}
        assert mine["schema: columns match the dbt contract"].status == "passed", mart
        ran = mine["dbt tests of the mart ran"]
        assert ran.status == "passed" and ran.observed == ran.details["tests"] > 0, (mart, ran.message)


def in_progress(fingerprint: dict, run_date) -> str:
    """The month in progress of a monthly mart's fingerprint: its latest month starting by ``run_date``."""
    return max(k for k in fingerprint["months"] if k <= run_date.isoformat())


def test_a_night_whose_closed_months_did_not_change_validates_only_the_month_in_progress(real_nights):
    """The second real night rebuilt every monthly mart with dbt; its closed months came out as the
    first night's release recorded them (per-month fingerprints in its manifest), so the gate read
    none of them into pandas: only the month (the quarter) in progress. Whole-mart checks ran as
    DuckDB aggregates over every month."""
    from pipelines.release import read_manifest

    settings, last = real_nights.settings, real_nights.last
    result = read_gate_result(settings, last)
    declared = load_mart_models(target_dir(settings) / "manifest.json")
    assert {m for m, d in declared.items() if d.month_column} == set(MONTHLY)
    manifest = read_manifest(settings)
    for mart in MONTHLY:
        fp = result.fingerprint["marts"][mart]
        assert fp["month_column"] == declared[mart].month_column and len(fp["months"]) > 12, mart
        assert sum(n for n, _ in fp["months"].values()) == fp["rows"] == result.marts[mart]
        current = in_progress(fp, last)
        assert result.validated[mart] == [current], mart
        mine = {c.name: c for c in result.checks if c.mart == mart}
        count = next(c for c in mine.values() if c.kind == "row_count")
        assert count.status == "passed" and count.details["partitions_validated"] == [current]
        assert set(count.details["partitions_changed"]) <= {current}, (mart, count.details)
        assert count.details["partitions_kept"] == len(fp["months"]) - 1
        for c in mine.values():  # the row-level expectations read the month in progress only
            if c.kind == "expectation" and "partitions" in c.details:
                assert c.details["partitions"] == [current], (mart, c.name)
        key = next(c for c in mine.values() if c.kind == "key")
        assert key.status == "passed" and "unique_combination_of_columns" in key.details["declared"]
        # the release keeps the months' fingerprints for the next night's gate
        published = manifest.marts[mart]
        assert published.month_column == fp["month_column"] and published.partition_by is None
        assert {k: [v["rows"], v["fingerprint"]] for k, v in published.months.items()} == fp["months"]
    # a whole-mart aggregate is reduced in DuckDB: the latest reference date is the run date,
    # though no closed month (each ending before it) was read
    latest = next(c for c in result.checks if c.mart == "fct_mrr_account_monthly"
                  and c.name == "expect_column_max_to_be_between(mrr_reference_date)")
    assert latest.status == "passed" and latest.observed == last.isoformat()
    assert "reduced in DuckDB" in latest.details["evaluated"]


def closed_month(settings, mart: str = "fct_mrr_account_monthly") -> tuple[str, str]:
    """(a closed month, an account with MRR in it) of a monthly mart of the working warehouse."""
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        month, account = con.execute(
            f"select month_start_date, min(account_id) from marts.{mart} where mrr_reporting > 0 "
            "group by all order by month_start_date desc limit 1 offset 2").fetchone()
    finally:
        con.close()
    return month.isoformat(), account


def test_a_corrupted_closed_month_of_a_monthly_mart_blocks_the_night(real_home):
    """A value planted in one closed month changes that month's fingerprint: the gate validates it
    with the month in progress, the night fails naming the mart, the month and the column, and
    the published release stays byte-identical."""
    from pipelines.ops import nightly
    from pipelines.release.publish import PublishRefused
    from tests.unit.test_publish import snapshot

    settings, last = real_home.settings, real_home.last
    before = snapshot(settings.published)
    month, account = closed_month(settings)
    sql(settings, "update marts.fct_mrr_account_monthly set arr_reporting = -7 "
        "where account_id = ? and month_start_date = ?", [account, month])
    with pytest.raises(QualityGateFailed) as exc:
        nightly.quality_gate(settings, last)
    result = exc.value.result
    current = in_progress(result.fingerprint["marts"]["fct_mrr_account_monthly"], last)
    assert result.validated["fct_mrr_account_monthly"] == [month, current]
    assert result.validated["fct_mrr_movements"] == [in_progress(result.fingerprint["marts"]["fct_mrr_movements"], last)]
    check = failed(result)[("fct_mrr_account_monthly", "expect_column_values_to_be_between(arr_reporting)")]
    assert check.details["failing_partitions"] == [month] and f"month_start_date {month}" in check.message
    assert check.message.startswith("1 of ") and "-7" in check.message
    assert check.example_rows[0]["account_id"] == account and check.example_rows[0]["month_start_date"] == month
    said = str(exc.value)
    assert "fct_mrr_account_monthly" in said and "arr_reporting" in said and month in said
    with pytest.raises(PublishRefused, match="quality gate failed"):
        nightly.publish(settings, last)
    assert snapshot(settings.published) == before


def test_a_duplicated_key_in_a_closed_month_is_caught_by_the_key_aggregate(real_home):
    """The key of a monthly mart (its dbt test's columns) is checked by a DuckDB group-by over the
    months validated tonight, the key holding the month: a row duplicated in a closed month changes
    that month's fingerprint, and the aggregate names the key, the month and the rows."""
    settings = real_home.settings
    month, account = closed_month(settings)
    sql(settings, "insert into marts.fct_mrr_account_monthly select * from marts.fct_mrr_account_monthly "
        "where account_id = ? and month_start_date = ?", [account, month])
    result = gate(real_home)
    check = failed(result)[("fct_mrr_account_monthly", "key (account_id, month_start_date) is unique")]
    assert check.kind == "key" and check.observed == 1
    assert f"month_start_date {month}" in check.message
    assert check.example_rows == [{"account_id": account, "month_start_date": month, "rows": 2}]
    assert check.details["declared"].startswith("dbt test unique_combination_of_columns_fct_mrr_account_monthly")
    assert month in check.details["scope"] or "partition" in check.details["scope"]
    # nothing else in the row-level expectations fails: the duplicate is a whole-mart fact
    assert {name for m, name in failed(result) if m == "fct_mrr_account_monthly"} <= {
        check.name, "movements agree with fct_mrr_movements"}


def test_whole_mart_expectations_of_a_monthly_mart_run_in_duckdb_or_are_refused(real_home, tmp_path):
    """A suite's aggregate expectation on a monthly mart is reduced in DuckDB over every month, a
    uniqueness expectation is a key aggregate over the whole mart (its columns do not hold the
    month), and one the gate cannot reduce is refused with what to do, never validated per batch."""
    settings = with_suites(real_home, tmp_path)
    add_expectations(settings.expectations_dir / "fct_mrr_account_monthly.yml", """
        - expect_column_min_to_be_between: {column: month_start_date, min_value: {$PARAMETER: run_date}}
        - expect_column_values_to_be_unique: {column: account_id}
        - expect_column_stdev_to_be_between: {column: mrr_reporting, min_value: 0}
        - expect_column_distinct_values_to_be_in_set: {column: reporting_currency, value_set: [USD, EUR]}
    """)
    result = run_quality_gate(settings, real_home.last, dbt_run_results=run_results_path(settings, real_home.last))
    bad = failed(result)
    oldest = bad[("fct_mrr_account_monthly", "expect_column_min_to_be_between(month_start_date)")]
    first = min(result.fingerprint["marts"]["fct_mrr_account_monthly"]["months"])
    assert oldest.observed == first and "reduced in DuckDB" in oldest.details["evaluated"]
    unique = bad[("fct_mrr_account_monthly", "expect_column_values_to_be_unique(account_id)")]
    assert unique.kind == "key" and unique.details["scope"] == "the whole mart" and unique.observed > 1
    stdev = bad[("fct_mrr_account_monthly", "expect_column_stdev_to_be_between(mrr_reporting)")]
    assert "never reads whole into a DataFrame" in stdev.message and "reconciliation" in stdev.message
    currency = next(c for c in result.checks if c.name == "expect_column_distinct_values_to_be_in_set(reporting_currency)")
    assert currency.status == "passed", currency.message
    assert {m for m, _ in bad} == {"fct_mrr_account_monthly"} and len(bad) == 3


def test_a_corrupted_new_partition_blocks_the_night(real_home):
    last = real_home.last
    con = duckdb.connect(str(real_home.settings.warehouse))
    account = con.execute("select min(account_id) from marts.fct_account_tiers_daily where as_of_date = ?",
                          [last]).fetchone()[0]
    accounts = con.execute("select count(*) from marts.fct_account_tiers_daily where as_of_date = ?",
                           [last]).fetchone()[0]
    con.execute("update marts.fct_account_tiers_daily set tier_score = 150 "
                "where account_id = ? and as_of_date = ?", [account, last])
    con.close()
    result = gate(real_home)
    assert not result.passed
    check = failed(result)[("fct_account_tiers_daily", "expect_column_values_to_be_between(tier_score)")]
    assert f"1 of {accounts} rows unexpected" in check.message and "150" in check.message
    assert check.example_rows[0]["account_id"] == account
    assert check.example_rows[0]["as_of_date"] == last.isoformat()
    assert check.details["failing_partitions"] == [last.isoformat()]
    with pytest.raises(QualityGateFailed) as exc:
        result.raise_if_failed()
    assert "fct_account_tiers_daily" in str(exc.value) and str(result.report_html) in str(exc.value)


def test_a_changed_earlier_partition_is_validated_again(real_home):
    """Earlier partitions are immutable by contract; one that changed anyway (a restatement, or
    tampering) differs from the last publish's fingerprint and is validated with the night's."""
    first, last = real_home.run_dates[0], real_home.last
    sql(real_home.settings, "update marts.fct_account_health_daily set support_score = 140 "
        "where as_of_date = ? and account_id = (select min(account_id) from marts.fct_account_health_daily)",
        [first])
    result = gate(real_home)
    assert result.validated["fct_account_health_daily"] == [first.isoformat(), last.isoformat()]
    assert result.validated["fct_account_tiers_daily"] == [last.isoformat()]
    check = failed(result)[("fct_account_health_daily", "expect_column_values_to_be_between(support_score)")]
    assert check.details["failing_partitions"] == [first.isoformat()]


def test_a_failed_dbt_test_blocks_the_night(real_home, tmp_path):
    path = run_results_path(real_home.settings, real_home.last)
    data = json.loads(path.read_text())
    test = next(r for r in data["results"] if r["unique_id"].startswith("test.") and r["status"] == "pass")
    test.update(status="fail", failures=3, message="Got 3 results, configured to fail if != 0")
    model = next(r for r in data["results"] if r["unique_id"].startswith("model."))
    model.update(status="error", message="Binder Error: boom")
    path.write_text(json.dumps(data))
    result = gate(real_home)
    bad = failed(result)
    name = test["unique_id"].split(".")[2]
    mart = next((c.mart for c in bad.values() if c.name == name), "?")
    assert "3 failing rows" in bad[(mart, name)].message
    assert "1 fail" in bad[(None, "dbt tests")].message
    assert "Binder Error: boom" in bad[(None, model["unique_id"].split(".")[2])].message
    # results of another as-of date, or none at all, fail too (never skipped)
    data["args"]["vars"] = {"as_of_date": "2020-01-01"}
    other = tmp_path / "run_results.json"
    other.write_text(json.dumps(data))
    assert (None, "dbt run is for this date") in failed(
        run_quality_gate(real_home.settings, real_home.last, dbt_run_results=other))
    assert (None, "dbt run results") in failed(
        run_quality_gate(real_home.settings, real_home.last, dbt_run_results=tmp_path / "nope.json"))


def test_an_older_night_than_the_warehouse_holds_is_refused(real_home):
    result = gate(real_home, real_home.run_dates[0])
    check = failed(result)[("fct_account_tiers_daily", "no as_of_date after the run date")]
    assert real_home.last.isoformat() in check.message and "replay" in check.message


def test_warning_severity_does_not_fail_and_schema_drift_is_named(real_home, tmp_path):
    settings = with_suites(real_home, tmp_path)
    add_expectations(settings.expectations_dir / "dim_accounts.yml", """
        - type: expect_column_values_to_be_between
          kwargs: {column: tier_score, max_value: 1}
          severity: warning
    """)
    sql(settings, "alter table marts.rpt_coverage_by_tier add column surprise varchar")
    result = run_quality_gate(settings, real_home.last,
                              dbt_run_results=run_results_path(settings, real_home.last))
    assert [c.name for c in result.warnings] == ["expect_column_values_to_be_between(tier_score)"]
    bad = failed(result)
    contract = bad[("rpt_coverage_by_tier", "schema: columns match the dbt contract")].message
    assert "not in the contract: surprise" in contract and "_customers__models.yml" in contract
    assert "surprise" in bad[("rpt_coverage_by_tier", "schema vs previous publish")].message
    assert {m for m, _ in bad} == {"rpt_coverage_by_tier"}


def test_suites_missing_invalid_or_without_a_mart_are_reported(real_home, tmp_path):
    settings = with_suites(real_home, tmp_path)
    sql(settings, "create table marts.fct_unsuited as select 1 as x")
    (settings.expectations_dir / "fct_gone.yml").write_text("mart: fct_gone\n")
    (settings.expectations_dir / "rpt_tier_distribution.yml").write_text("mart: wrong_name\n")
    (settings.expectations_dir / "rpt_coverage_by_csm.yml").write_text(
        "mart: rpt_coverage_by_csm\nkey: csm_owner_id\ncolumns: [csm_owner_id]\n")
    add_expectations(settings.expectations_dir / "dim_accounts.yml", """
        - expect_column_values_to_be_purple: {column: account_id}
        - expect_column_values_to_not_be_null: {column: no_such_column}
    """)
    bad = failed(run_quality_gate(settings, real_home.last))
    assert "fct_unsuited.yml" in bad[("fct_unsuited", "suite exists")].message
    assert "dropped or renamed" in bad[("fct_gone", "mart exists")].message
    assert "must equal the file name" in bad[("rpt_tier_distribution", "suite is valid")].message
    moved = bad[("rpt_coverage_by_csm", "suite is valid")].message  # a suite of the earlier format
    assert "`columns:` belongs in the dbt model YAML" in moved and "`key:` belongs" in moved
    assert "invalid expectation in dim_accounts.yml" in bad[
        ("dim_accounts", "expect_column_values_to_be_purple(account_id)")].message
    assert "no_such_column not found" in bad[
        ("dim_accounts", "expect_column_values_to_not_be_null(no_such_column)")].message


def rewrite_audit(settings, run_date, source: str, select: str) -> None:
    """Rewrite the lake's load-audit file(s) of one source and night with ``select ... from audit``."""
    from pipelines.intake import lake

    for path in sorted(lake.audit_dir(settings.lake, run_date, source).glob("*.parquet")):
        con = duckdb.connect()
        try:
            con.execute(f"create table audit as select * from read_parquet('{path}')")
            con.execute(f"copy ({select}) to '{path}' (format parquet)")
        finally:
            con.close()


def test_quarantine_and_freshness_on_the_real_raw_lake(real_home):
    from pipelines.quality import check_quarantine

    settings, last = real_home.settings, real_home.last
    assert check_quarantine(settings, last).passed
    rewrite_audit(settings, last, "billing", "select * replace (rows_read // 5 as rows_quarantined) from audit")
    early = check_quarantine(settings, last)
    assert not early.passed and early.scope == "quarantine"
    assert {c.source for c in early.failed_checks} == {"billing"}
    with pytest.raises(QualityGateFailed, match=r"(?s)quarantine check failed .*billing"):
        early.raise_if_failed()
    rewrite_audit(settings, last, "crm", "select * from audit where entity <> 'nps_responses'")
    bad = failed(gate(real_home))
    assert ("billing", "quarantine share of billing/subscriptions") in bad
    assert "no drop loaded for crm/nps_responses" in bad[("crm", f"drop for {last} loaded")].message


def test_locked_warehouse_is_waited_for_then_raised_as_transient(real_home, monkeypatch):
    from pipelines import warehouse

    monkeypatch.setattr(warehouse, "LOCK_WAIT_SECONDS", 1.0)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
         "print('locked', flush=True); time.sleep(60)", str(real_home.settings.warehouse)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(warehouse.WarehouseLocked, match="locked by another process"):
            gate(real_home)
    finally:
        holder.kill()
        holder.wait()


def test_scaffold_suite_round_trips(real_nights, tmp_path):
    from pipelines.build.marts import open_marts
    from pipelines.quality.suites import parse_suite

    con = open_marts(real_nights.settings)
    try:
        text = scaffold_suite(con, "rpt_coverage_by_tier")
    finally:
        con.close()
    path = tmp_path / "rpt_coverage_by_tier.yml"
    path.write_text(text)
    suite = parse_suite(path)
    assert suite.mart == "rpt_coverage_by_tier" and suite.expectations == () and suite.row_count["min"] == 1
    assert "# - expect_column_values_to_be_between: {column: account_count, min_value: 0}" in text


def test_project_suites_are_valid_and_cover_every_dbt_mart_and_the_daily_partitions_are_dbts(real_nights):
    """Every mart model has a valid suite (and vice versa); the gate's daily marts (dbt's
    meta.partition_date_column) are exactly the marts dbt builds incrementally per as-of date."""
    suites = load_suites(ROOT / "expectations")
    errors = {m: str(s) for m, s in suites.items() if isinstance(s, Exception)}
    assert not errors
    models = {p.stem for p in (ROOT / "dbt_project" / "models" / "marts").rglob("*.sql")}
    assert not models - set(suites), f"marts without a suite in expectations/: {sorted(models - set(suites))}"
    assert not set(suites) - models, f"suites without a dbt mart: {sorted(set(suites) - models)}"
    from pipelines.quality.suites import build_gx_suite

    for mart, suite in suites.items():  # every expectation builds (known type, valid kwargs)
        assert build_gx_suite(suite, previous_rows=100).problems == [], mart
    manifest = target_dir(real_nights.settings) / "manifest.json"
    nodes = json.loads(manifest.read_text())["nodes"]
    incremental = {
        n["name"] for n in nodes.values()
        if n["resource_type"] == "model" and n["name"] in models
        and n["config"].get("materialized") == "incremental" and n["config"].get("unique_key") == "as_of_date"
    }
    declared = load_mart_models(manifest)
    assert set(declared) == models
    assert {m for m, d in declared.items() if d.partition_by == "as_of_date"} == incremental == set(DAILY)
    # every published mart has an enforced contract and a grain test in dbt (the suites have none)
    for mart, model in declared.items():
        assert model.contract_enforced and all(t for _, t in model.columns), mart
        assert any(t.kind in ("unique", "unique_combination_of_columns") for t in model.tests), mart


def test_importing_the_package_stays_light():
    """The DAG file imports these modules while it is parsed: no GE, pandas or DuckDB then."""
    code = ("import sys; import pipelines.quality, pipelines.release.publish, pipelines.release, pipelines.report, pipelines.build.marts, "
            "pipelines.build.dbt_results; "
            "print(sorted(m for m in ('great_expectations', 'pandas', 'duckdb', 'pyarrow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_schema_change_against_the_previous_publish_is_a_warning_once_declared(real_home, tmp_path):
    """A mart's schema change is declared where its columns live: the dbt contract (here the
    manifest dbt would write after the model YAML gained the column)."""
    settings = with_suites(real_home, tmp_path)
    sql(settings, "alter table marts.rpt_coverage_by_tier add column surprise varchar")
    manifest = target_dir(settings) / "manifest.json"
    data = json.loads(manifest.read_text())
    data["nodes"]["model.segment_mart.rpt_coverage_by_tier"]["columns"]["surprise"] = {
        "name": "surprise", "data_type": "string", "description": ""}
    manifest.write_text(json.dumps(data))
    result = run_quality_gate(settings, real_home.last, dbt_run_results=run_results_path(settings, real_home.last))
    assert result.passed, result.summary()["failed"]
    drift = next(c for c in result.checks if c.mart == "rpt_coverage_by_tier" and c.name == "schema vs previous publish")
    assert drift.status == "warning" and "added surprise" in drift.message
    # and it publishes: the new column is in the release
    manifest = publish(settings, real_home.last, result, build_html_report=False)
    assert "surprise" in [c["name"] for c in manifest.marts["rpt_coverage_by_tier"].columns]



# --------------------------------------------------------------------------- each fact stated once


def test_no_suite_restates_a_column_fact_of_the_dbt_model_yaml(real_nights):
    """The guard: no expectation of the project's suites checks what a dbt test on the same column
    declares (not null, unique, allowed values, accepted range, compound key); those facts live in
    the model YAML only. (Suites no longer have `key:` or `columns:`: parse_suite refuses them.)"""
    from pipelines.quality.declared import restatements

    models = load_mart_models(target_dir(real_nights.settings) / "manifest.json")
    found = {mart: [f"{r.expectation.label} ~ {r.test.name}" for r in restatements(suite, models[mart])]
             for mart, suite in load_suites(ROOT / "expectations").items()}
    assert not {m: r for m, r in found.items() if r}


def test_a_check_that_disagrees_with_the_model_on_allowed_values_fails_the_night(real_home, tmp_path):
    """The held-out failure of issue 17: a suite whose value set of change_type lacks 'reactivated',
    the model's and dbt's allowed value. Planted here on a night whose data has no 'reactivated'
    row, so only the disagreement itself can fail it: the gate names both places and the values."""
    settings = with_suites(real_home, tmp_path)
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        assert not con.execute("select count(*) from marts.dim_account_tier_history "
                               "where change_type = 'reactivated'").fetchone()[0]
    finally:
        con.close()
    add_expectations(settings.expectations_dir / "dim_account_tier_history.yml", """
        - expect_column_values_to_be_in_set: {column: change_type, value_set: [initial, upgrade, downgrade]}
        - expect_column_values_to_be_in_set: {column: assigned_tier, value_set: [Strategic, Core, Scale, Tech-touch]}
        - expect_column_values_to_be_between: {column: tier_number, min_value: 1}
    """)
    add_expectations(settings.expectations_dir / "dim_accounts.yml", """
        - expect_column_values_to_be_in_set: {column: account_status, value_set: [live, churned, prospect]}
    """)
    result = run_quality_gate(settings, real_home.last, dbt_run_results=run_results_path(settings, real_home.last))
    bad = failed(result)
    change = bad[("dim_account_tier_history", "expect_column_values_to_be_in_set(change_type) restates a dbt test")]
    assert "disagrees with dbt test accepted_values_dim_account_tier_history_change_type" in change.message
    assert "the suite lacks ['reactivated']" in change.message
    assert "models/marts/customers/_customers__models.yml" in change.message
    # tier names: dbt reads them from the seed, a literal list in a suite is a second statement
    tiers = bad[("dim_account_tier_history", "expect_column_values_to_be_in_set(assigned_tier) restates a dbt test")]
    assert "ref('tier_targets')" in tiers.message
    # the same value set as dbt's is redundant: reported, never fatal; a check dbt does not make stays
    same = next(c for c in result.checks if c.mart == "dim_accounts"
                and c.name == "expect_column_values_to_be_in_set(account_status) restates a dbt test")
    assert same.status == "warning" and "says the same as" in same.message
    assert ("dim_account_tier_history", "expect_column_values_to_be_between(tier_number)") not in bad
    assert {m for m, _ in bad} == {"dim_account_tier_history"} and len(bad) == 2


def test_a_dbt_test_left_out_of_the_build_is_named_and_a_missing_manifest_stops_the_gate(real_home):
    """The suites trust dbt's tests for the column facts, so the gate says which of a mart's dbt
    tests did not run tonight (e.g. setting dbt_build_exclude); without dbt's manifest it cannot
    check the marts at all."""
    path = run_results_path(real_home.settings, real_home.last)
    data = json.loads(path.read_text())
    dropped = [r for r in data["results"] if r["unique_id"].startswith("test.")
               and "accepted_values_fct_account_tiers_daily" in r["unique_id"]]
    assert dropped
    data["results"] = [r for r in data["results"] if r not in dropped]
    path.write_text(json.dumps(data))
    result = gate(real_home)
    assert result.passed, result.summary()["failed"]
    warning = next(c for c in result.warnings if c.mart == "fct_account_tiers_daily")
    assert warning.name == "dbt tests of the mart ran" and warning.observed == len(dropped)
    assert dropped[0]["unique_id"].split(".")[2] in warning.details["not_run"]
    (target_dir(real_home.settings) / "manifest.json").unlink()
    result = gate(real_home)
    assert "no dbt manifest at" in failed(result)[(None, "dbt manifest")].message
    assert not result.fingerprint.get("marts")


def test_a_monthly_fingerprint_is_the_whole_marts_and_finds_the_changed_months():
    """One grouped scan gives a monthly mart's per-month fingerprints and its whole-mart hash (the
    one the publish recomputes without the month column); a change shows in its month only, and a
    previous release without months (or with another schema) makes every month changed."""
    from pipelines.build.marts import (
        NULL_PARTITION,
        changed_partitions,
        mart_columns,
        mart_fingerprint,
        partition_filter,
    )

    con = duckdb.connect()
    con.execute("create schema marts")
    con.execute("create table marts.m as select (date '2026-01-01' + to_months(i % 3))::date as month_start_date, "
                "i as account, i * 1.5 as mrr from range(30) t(i)")
    columns = mart_columns(con, "m")
    fp = mart_fingerprint(con, "m", columns, None, "month_start_date")
    whole = mart_fingerprint(con, "m", columns, None)
    assert (fp["rows"], fp["hash"]) == (whole["rows"], whole["hash"]) == (30, fp["hash"])
    assert sorted(fp["months"]) == ["2026-01-01", "2026-02-01", "2026-03-01"] and fp["partition_by"] is None
    previous = {"columns": [{"name": c, "type": t} for c, t in columns], "month_column": "month_start_date",
                "months": {k: {"rows": n, "fingerprint": h} for k, (n, h) in fp["months"].items()}}
    assert changed_partitions(fp, previous) == []
    con.execute("update marts.m set mrr = 0 where account = 4")  # a February row
    con.execute("insert into marts.m values (null, 99, 1)")
    after = mart_fingerprint(con, "m", columns, None, "month_start_date")
    assert changed_partitions(after, previous) == ["2026-02-01", NULL_PARTITION]
    assert changed_partitions(after, {**previous, "months": {}}) == sorted(after["months"])
    assert changed_partitions(after, {**previous, "month_column": None}) == sorted(after["months"])
    cond, params = partition_filter("month_start_date", ["2026-02-01", NULL_PARTITION])
    assert con.execute(f"select count(*) from marts.m where {cond}", params).fetchone()[0] == 11


def test_great_expectations_sees_the_columns_it_checks_in_numpy_dtypes_with_the_same_outcome(monkeypatch):
    """The gate gives Great Expectations the columns a suite's expectations read (plus the partition
    and derived columns), dates as datetime64[ns] and small integers as int64: every check has the
    outcome, message and whole example rows it has on the whole DataFrame in DuckDB's dtypes."""
    from pipelines.quality import gate as g
    from pipelines.quality.suites import ExpectationSpec, MartSuite, build_gx_suite

    con = duckdb.connect()
    con.execute("create schema marts")
    con.execute("""create table marts.m as select (date '2026-01-01' + (i % 2)::int) as as_of_date,
        'acct-' || i as account_id, (i * 3)::integer as seats, if(i = 7, null, i)::integer as maybe_seats,
        (date '2026-01-01' + (i % 5)::int) as due_date, if(i % 4 = 0, 'new', 'churn') as movement_type,
        if(i = 9, 0, if(i % 4 = 0, 1, -1))::integer as logo_change, 'x' || i as note from range(40) t(i)""")
    specs = (
        ExpectationSpec("expect_column_values_to_be_between", {"column": "seats", "min_value": 0, "max_value": 100}),
        ExpectationSpec("expect_column_values_to_be_between", {"column": "maybe_seats", "max_value": 30}),
        ExpectationSpec("expect_column_values_to_be_between",
                        {"column": "due_date", "max_value": {"$PARAMETER": "run_date"}}),
        ExpectationSpec("expect_column_pair_values_to_be_in_set", {
            "column_A": "movement_type", "column_B": "logo_change", "value_pairs_set": [["new", 1], ["churn", -1]]}),
        ExpectationSpec("expect_column_values_to_be_between", {"column": "seats_gap", "min_value": 0}),
    )
    suite = MartSuite("m", Path("m.yml"), derived={"seats_gap": "seats - 2"}, expectations=specs)
    columns = [(c, t) for c, t in con.execute("select column_name, data_type from information_schema.columns "
                                              "where table_name = 'm' order by ordinal_position").fetchall()]
    built = build_gx_suite(suite, previous_rows=None, include_row_count=False)
    assert g._columns_read(built, columns, "as_of_date") == [
        "as_of_date", "seats", "maybe_seats", "due_date", "movement_type", "logo_change"]
    run_date, batches = dt.date(2026, 1, 3), [["2026-01-01"], ["2026-01-02"]]
    frame = g._vectorizable(con.execute("select * from marts.m").df())
    assert {c: str(frame[c].dtype) for c in ("as_of_date", "due_date", "seats", "maybe_seats")} == {
        "as_of_date": "datetime64[ns]", "due_date": "datetime64[ns]", "seats": "int64", "maybe_seats": "Int32"}

    def run():
        checks = g._validate_mart(g._gx_batches(), con, suite, run_date, None, columns, batches, "as_of_date")
        return [(c.name, c.status, c.message, c.observed, c.example_rows, c.details.get("failing_partitions"))
                for c in checks]

    narrow = run()
    monkeypatch.setattr(g, "_columns_read", lambda *a: None)  # every column, as before
    monkeypatch.setattr(g, "_vectorizable", lambda df: df)     # DuckDB's dtypes, as before
    assert run() == narrow
    status = {name: s for name, s, *_ in narrow}
    assert status == {"expect_column_values_to_be_between(seats)": "failed",
                      "expect_column_values_to_be_between(maybe_seats)": "failed",
                      "expect_column_values_to_be_between(due_date)": "failed",
                      "expect_column_pair_values_to_be_in_set(movement_type, logo_change)": "failed",
                      "expect_column_values_to_be_between(seats_gap)": "failed"}
    seats = next(c for c in narrow if c[0] == "expect_column_values_to_be_between(seats)")
    assert seats[4][0]["note"].startswith("x") and set(seats[4][0]) == {c for c, _ in columns} | {"seats_gap"}


def test_a_suite_whose_expectation_reads_other_columns_gets_every_column():
    from pipelines.quality import gate as g
    from pipelines.quality.suites import ExpectationSpec, MartSuite, build_gx_suite

    columns = [("a", "INTEGER"), ("b", "INTEGER")]
    for spec in (ExpectationSpec("expect_table_columns_to_match_ordered_list", {"column_list": ["a", "b"]}),
                 ExpectationSpec("expect_column_values_to_be_between",
                                 {"column": "a", "min_value": 0, "row_condition": "b > 1", "condition_parser": "pandas"})):
        built = build_gx_suite(MartSuite("m", Path("m.yml"), expectations=(spec,)), previous_rows=None)
        assert g._columns_read(built, columns, None) is None, spec
    only_rows = build_gx_suite(MartSuite("m", Path("m.yml")), previous_rows=5)
    assert g._columns_read(only_rows, columns, None) == ["a"]
