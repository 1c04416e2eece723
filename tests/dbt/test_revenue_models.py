"""Revenue marts (ISSUE 4) on a small generated dataset, with the real generator,
loader, dbt and DuckDB.

Nights run in order like the pipeline (``dbt build`` per as-of date, selecting the
revenue marts, everything upstream of them and the ``assert_revenue_*`` data tests;
any failing test fails the night; the ``mart_nights`` fixture of tests/dbt/conftest.py,
shared with the customer-mart tests). The tests then re-check the reconciliations with
their own SQL and prove that a rerun and a backfill of an as-of date give the same
tables as the original night.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import duckdb
import pytest

from tests.dbt.conftest import MartNights, Tables

BILLING_ONLY_MARTS = ("fct_mrr_account_monthly", "fct_mrr_movements")


def _assert_same_tables(run_date: dt.date, now: Tables, original: Tables) -> None:
    """Every revenue mart, and the account-mart history its segments read, as originally built."""
    for mart, rows in now.history.items():
        assert rows == original.history[mart], f"{mart} history changed on rebuilding {run_date}"
    for mart, rows in now.revenue.items():
        assert rows == original.revenue[mart], f"{mart} changed on rebuilding {run_date}"


@pytest.fixture
def con(mart_nights: MartNights) -> Iterator[duckdb.DuckDBPyConnection]:
    with duckdb.connect(str(mart_nights.settings.warehouse), read_only=True) as connection:
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


def test_rerun_of_the_last_night_gives_identical_tables(mart_nights: MartNights, restated_nights: dict) -> None:
    """The last night built again on a warehouse that holds it (the last build of ``restated_nights``)."""
    last = mart_nights.run_dates[-1]
    _assert_same_tables(last, restated_nights[last], mart_nights.tables[last])


def test_restating_an_earlier_night_then_replaying_gives_the_original_tables(
    mart_nights: MartNights, restated_nights: dict
) -> None:
    """How an older night is restated (docs/operations.md): rebuild it and every later night in
    order (``restated_nights``). The billing-only marts of the restated night match at once;
    every replayed night then matches its original build exactly."""
    first, *later = mart_nights.run_dates
    for mart in BILLING_ONLY_MARTS:
        assert restated_nights[first].revenue[mart] == mart_nights.tables[first].revenue[mart], (
            f"{mart} changed on rebuilding {first}")
    for run_date in later:
        _assert_same_tables(run_date, restated_nights[run_date], mart_nights.tables[run_date])
