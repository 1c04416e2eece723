"""Revenue marts (ISSUE 4) on a small generated dataset, with the real generator,
loader, dbt and DuckDB.

Nights run in order like the pipeline (``dbt build`` per as-of date, selecting the
revenue marts, everything upstream of them and the ``assert_revenue_*`` data tests;
any failing test fails the night). The tests then re-check the reconciliations with
their own SQL and prove that a rerun and a backfill of an as-of date give the same
tables as the original night.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from pipelines.dbt import run_dbt
from pipelines.generate import generate
from pipelines.ingest import ingest
from pipelines.settings import Settings

REVENUE_MARTS = (
    "fct_mrr_account_monthly",
    "fct_mrr_movements",
    "rpt_segment_retention_monthly",
    "rpt_segment_retention_quarterly",
    "rpt_cohort_retention",
    "rpt_segment_unit_economics",
)
# cautious: a test of another area's models is run only when all its models are built here
SELECT = (
    "--select",
    "+path:models/marts/revenue",
    "path:data-tests/assert_revenue_*",
    "--indirect-selection",
    "cautious",
)
BILLING_ONLY_MARTS = ("fct_mrr_account_monthly", "fct_mrr_movements")
ACCOUNT_HISTORY_MARTS = (
    "fct_account_tiers_daily",
    "fct_account_health_daily",
    "fct_account_segments_daily",
)
DROP_DAYS = 3


def _snapshot(warehouse: Path) -> dict[str, list[tuple]]:
    """Every revenue mart, fully sorted, so two builds can be compared exactly."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {
            mart: con.execute(f"select * from marts.{mart} order by all").fetchall()
            for mart in REVENUE_MARTS
        }


def _history(warehouse: Path, run_date: dt.date) -> dict[str, list[tuple]]:
    """The account marts' daily rows the revenue segments read for ``run_date``."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {
            mart: con.execute(
                f"select * from marts.{mart} where as_of_date <= ? order by all", [run_date]
            ).fetchall()
            for mart in ACCOUNT_HISTORY_MARTS
        }


def _assert_same_tables(warehouse: Path, run_date: dt.date, original: dict) -> None:
    """Every revenue mart, and the account-mart history its segments read, as originally built."""
    now = _snapshot(warehouse)
    for mart, rows in _history(warehouse, run_date).items():
        assert rows == original["history"][mart], f"{mart} history changed on rebuilding {run_date}"
    for mart in REVENUE_MARTS:
        assert now[mart] == original["marts"][mart], f"{mart} changed on rebuilding {run_date}"


def _build(settings: Settings, run_date: dt.date) -> None:
    run_dbt(settings, run_date, "build", *SELECT)


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    home = tmp_path_factory.mktemp("revenue")
    settings = Settings(home=home, landing_dir=home / "landing", warehouse_path=home / "wh.duckdb")
    summary = generate(
        settings.landing,
        accounts=60,
        start_date=dt.date(2025, 1, 1),
        days=200,
        drop_days=DROP_DAYS,
        seed=7,
        events_per_account_day=2.0,
    )
    run_dates = list(summary.run_dates)
    snapshots: dict[dt.date, dict[str, dict[str, list[tuple]]]] = {}
    for run_date in run_dates:
        ingest(settings, run_date)
        _build(settings, run_date)
        snapshots[run_date] = {
            "marts": _snapshot(settings.warehouse),
            "history": _history(settings.warehouse, run_date),
        }
    yield {"settings": settings, "run_dates": run_dates, "snapshots": snapshots}


@pytest.fixture
def con(nights: dict) -> Iterator[duckdb.DuckDBPyConnection]:
    with duckdb.connect(str(nights["settings"].warehouse), read_only=True) as connection:
        yield connection


def test_marts_are_not_empty(con: duckdb.DuckDBPyConnection) -> None:
    for mart in ("fct_mrr_account_monthly", "fct_mrr_movements", "rpt_segment_retention_monthly"):
        assert con.execute(f"select count(*) from marts.{mart}").fetchone()[0] > 0, mart
    kinds = {
        r[0]
        for r in con.execute(
            "select distinct movement_type from marts.fct_mrr_movements"
        ).fetchall()
    }
    assert {"new", "expansion", "churn"} <= kinds


@pytest.mark.parametrize(
    "report", ["rpt_segment_retention_monthly", "rpt_segment_retention_quarterly"]
)
def test_segment_flows_reconcile_to_the_cent(con: duckdb.DuckDBPyConnection, report: str) -> None:
    broken = con.execute(
        f"""
        select period_start_date, segment_dimension, segment_value
        from marts.{report}
        where starting_mrr_reporting + new_mrr_reporting + expansion_mrr_reporting
              + reactivation_mrr_reporting - contraction_mrr_reporting - churned_mrr_reporting
              <> ending_mrr_reporting
           or starting_logos + new_logos + reactivated_logos - churned_logos <> ending_logos
        """
    ).fetchall()
    assert broken == []


@pytest.mark.parametrize(
    "report", ["rpt_segment_retention_monthly", "rpt_segment_retention_quarterly"]
)
def test_segments_of_each_dimension_sum_to_the_total(
    con: duckdb.DuckDBPyConnection, report: str
) -> None:
    dimensions = {
        r[0]
        for r in con.execute(f"select distinct segment_dimension from marts.{report}").fetchall()
    }
    assert {"total", "tier", "value_band", "plan", "region", "health_status"} <= dimensions
    mismatches = con.execute(
        f"""
        with by_dimension as (
            select period_start_date, segment_dimension,
                   sum(starting_mrr_reporting) as s, sum(ending_mrr_reporting) as e,
                   sum(churned_mrr_reporting) as c, sum(ending_logos) as l
            from marts.{report}
            group by all
        )
        select d.period_start_date, d.segment_dimension
        from by_dimension as d
        inner join by_dimension as t
            on t.period_start_date = d.period_start_date and t.segment_dimension = 'total'
        where (d.s, d.e, d.c, d.l) <> (t.s, t.e, t.c, t.l)
        """
    ).fetchall()
    assert mismatches == []


def test_account_months_sum_to_the_reported_total(con: duckdb.DuckDBPyConnection) -> None:
    mismatches = con.execute(
        """
        with accounts as (
            select month_start_date, sum(mrr_reporting) as mrr, sum(mrr_change_reporting) as change
            from marts.fct_mrr_account_monthly group by all
        ),
        movements as (
            select month_start_date, sum(mrr_change_reporting) as change
            from marts.fct_mrr_movements group by all
        )
        select accounts.month_start_date
        from accounts
        left join marts.rpt_segment_retention_monthly as report
            on report.period_start_date = accounts.month_start_date
            and report.segment_dimension = 'total'
        left join movements on movements.month_start_date = accounts.month_start_date
        where coalesce(report.ending_mrr_reporting, 0) <> accounts.mrr
           or coalesce(movements.change, 0) <> accounts.change
        """
    ).fetchall()
    assert mismatches == []


def test_account_active_at_the_end_has_not_churned(con: duckdb.DuckDBPyConnection) -> None:
    wrong = con.execute(
        """
        with last_logo_events as (
            select account_id, movement_type,
                   row_number() over (partition by account_id order by month_start_date desc) as rn
            from marts.fct_mrr_movements
            where movement_type in ('new', 'churn', 'reactivation')
        )
        select m.account_id
        from marts.fct_mrr_account_monthly as m
        inner join last_logo_events as e on e.account_id = m.account_id and e.rn = 1
        where m.month_start_date = (select max(month_start_date) from marts.fct_mrr_account_monthly)
          and m.is_active_customer
          and e.movement_type = 'churn'
        """
    ).fetchall()
    assert wrong == []


def test_rerun_of_the_last_night_gives_identical_tables(nights: dict) -> None:
    settings, last = nights["settings"], nights["run_dates"][-1]
    _build(settings, last)
    _assert_same_tables(settings.warehouse, last, nights["snapshots"][last])


def test_restating_an_earlier_night_then_replaying_gives_the_original_tables(nights: dict) -> None:
    """How an older night is restated (docs/operations.md): rebuild it and every later night in
    order. The billing-only marts of the restated night match at once; every replayed night
    then matches its original build exactly."""
    settings, run_dates = nights["settings"], nights["run_dates"]
    first = run_dates[0]
    _build(settings, first)
    now = _snapshot(settings.warehouse)
    for mart in BILLING_ONLY_MARTS:
        assert now[mart] == nights["snapshots"][first]["marts"][mart], f"{mart} changed on rebuilding {first}"
    for run_date in run_dates[1:]:
        _build(settings, run_date)
        _assert_same_tables(settings.warehouse, run_date, nights["snapshots"][run_date])
