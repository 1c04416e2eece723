"""The nightly DAG end to end through `airflow dags test`, on a tiny generated business.

One Airflow + pipeline home for the module; the tests run in order like consecutive nights:
a good first night, four failed second nights (three bad deliveries, and a mart that passes dbt
but breaks an expectation; each must fail at the right task and leave the publish
byte-identical), the second night's good delivery publishes, and re-running it gives identical
marts. The nights' dbt builds leave the generic data tests out (conftest.DAG_TEST_DBT_EXCLUDE).
"""

from __future__ import annotations

import csv
import json
import shutil

import pytest

from tests.e2e.conftest import ACCOUNTS, DAYS, DROP_DAYS, SEED, START, Night

pytestmark = pytest.mark.e2e


def _assert_ok(result) -> None:
    failures = [line for line in result.output.splitlines() if "FAILED for run date" in line]
    assert result.ok, f"dags test {result.run_date} failed: {failures}\n{result.output[-4000:]}"


def test_first_night_publishes_the_marts(night: Night):
    d1 = night.drops[0]
    _assert_ok(night.run(d1))
    manifest = night.manifest()
    assert manifest["run_date"] == d1.isoformat()
    marts = manifest["marts"]
    assert marts, "nothing was published"
    assert any(m["rows"] > 0 for m in marts.values())

    from pipelines.release import open_published

    con = open_published(night.settings)
    try:
        tables = {r[0] for r in con.execute(
            "select table_name from information_schema.tables where table_schema = 'marts'").fetchall()}
        assert set(marts) <= tables
        for name, mart in marts.items():
            assert con.execute(f'select count(*) from marts."{name}"').fetchone()[0] == mart["rows"]
    finally:
        con.close()
    for name, mart in marts.items():
        assert (night.settings.published / "current" / mart["parquet"]).exists(), name

    summary = night.summary(d1)
    assert summary["status"] == "published"
    assert summary["published"]["release_id"] == manifest["release_id"]
    assert summary["ingested"]["crm/accounts"]["rows_loaded"] == ACCOUNTS


def test_the_ui_has_every_task_log_and_the_real_run_duration(night: Night):
    """`dags test` runs tasks in-process: pipelines.ops.dag_test_runs writes each task's log where the
    API server reads it and replaces the start date DAG.test() records (the logical date)."""
    import sqlite3

    d1 = night.drops[0]
    con = sqlite3.connect(night.airflow.database)
    try:
        run_id, start, logical, run_after = con.execute(
            "select run_id, start_date, logical_date, run_after from dag_run where logical_date like ? "
            "order by run_after desc limit 1", (f"{d1.isoformat()}%",)).fetchall()[0]
        tasks = [r[0] for r in con.execute("select task_id from task_instance where run_id = ?", (run_id,))]
    finally:
        con.close()
    assert start == run_after and start != logical
    folder = night.airflow.logs / "dag_id=segment_mart_nightly" / f"run_id={run_id}"
    for task_id in tasks:
        log = folder / f"task_id={task_id}" / "attempt=1.log"
        assert log.exists() and log.stat().st_size > 0, log
    assert "drop" in (folder / "task_id=check_extracts" / "attempt=1.log").read_text()


def _defective_drop(night: Night, defect: str):
    """The second drop as the generator writes it with `defect` injected (into its last drop)."""
    from pipelines.lab.generate import generate

    scratch = night.root / f"defect_{defect}"
    if not scratch.exists():
        # Same business, ending on our second night: its last drop is that night.
        later = len(night.drops) - 2  # drops after the second
        generate(scratch, accounts=ACCOUNTS, start_date=START, days=DAYS - later, drop_days=DROP_DAYS - later,
                 seed=SEED, defects=(defect,))
    return scratch / night.drops[1].isoformat()


def _use_generated_defect(night: Night, defect: str) -> None:
    d2 = night.drops[1]
    shutil.rmtree(night.drop(d2))
    shutil.copytree(_defective_drop(night, defect), night.drop(d2))


def _unknown_currency(night: Night) -> None:
    """A subscription billed in a currency with no FX rate ("XYZ" passes the contract's ISO
    pattern): ingestion loads it, the dbt tests on the revenue models must stop the night."""
    path = night.drop(night.drops[1]) / "billing" / "subscriptions.csv"
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    active = next(r for r in rows if not r["end_date"] and float(r["amount"]) > 0)
    active["currency"] = "XYZ"
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def _expectation_the_marts_break(night: Night) -> None:
    """A mart that passes every dbt test but breaks an expectation of its suite: the suite caps
    the tier score at 1, which the real mart (scores up to 100) cannot meet."""
    suite = night.expectations / "fct_account_tiers_daily.yml"
    suite.write_text(suite.read_text().replace(
        "expectations:\n", "expectations:\n  - expect_column_values_to_be_between: {column: tier_score, max_value: 1}\n", 1))


FAILURES = {
    # name: (how to break the night, task that must fail, text the message must contain)
    "missing_file": (lambda n: _use_generated_defect(n, "missing_file"), {"check_extracts"}, "is missing"),
    "mass_quarantine": (lambda n: _use_generated_defect(n, "mass_quarantine"), {"check_quarantine"}, "quarantine"),
    "mart_check": (_unknown_currency, {"dbt_build"}, r"assert_revenue_currencies_have_fx_rates.*fail"),
    "expectation": (_expectation_the_marts_break, {"quality_gate"},
                    r"\[expectation: fct_account_tiers_daily\] expect_column_values_to_be_between\(tier_score\)"),
}


@pytest.mark.parametrize("failure", list(FAILURES))
def test_a_bad_night_fails_at_the_right_task_and_keeps_the_publish(night: Night, failure: str):
    import re

    breaker, tasks, pattern = FAILURES[failure]
    d2 = night.drops[1]
    published_before = night.published_fingerprint()
    breaker(night)
    try:
        result = night.run(d2)
    finally:
        night.restore_drop(d2)
        night.restore_expectations()
    assert not result.ok, "the night should have failed"
    summary = night.summary(d2)
    assert summary["status"] == "failed"
    assert summary["failed_task"] in tasks, summary
    assert re.search(pattern, summary["error"], re.IGNORECASE), summary["error"]
    assert f"at task {summary['failed_task']}" in result.output, "the failure callback logs the failing task"
    # the failure is alerted with its cause and the commands that fix it (docs/outbound.md)
    alert = json.loads((night.settings.home / "alerts" / d2.isoformat() / "failure.json").read_text())["text"]
    assert f"FAILED at {summary['failed_task']}" in alert and summary["error"].splitlines()[0][:60] in alert
    assert f"segment-mart run --run-date {d2}" in alert and "airflow tasks clear segment_mart_nightly" in alert
    assert night.published_fingerprint() == published_before, "a failed night must not touch the publish"
    assert night.manifest()["run_date"] == night.drops[0].isoformat()


def test_the_next_good_nights_publish(night: Night):
    for run_date in night.drops[1:]:
        _assert_ok(night.run(run_date))
        assert night.manifest()["run_date"] == run_date.isoformat()
        assert night.summary(run_date)["status"] == "published"


def test_rerunning_a_night_gives_identical_marts(night: Night):
    d2 = night.drops[-1]
    before = night.manifest()
    _assert_ok(night.run(d2))
    after = night.manifest()
    assert after["run_date"] == d2.isoformat()
    assert {m: v["checksum"] for m, v in after["marts"].items()} == {
        m: v["checksum"] for m, v in before["marts"].items()
    }
    assert after["dataset_checksum"] == before["dataset_checksum"]
