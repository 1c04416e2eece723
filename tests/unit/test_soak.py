"""The soak's invariants (pipelines/lab/soak.py) catch what they are for, on hand-made marts."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from pipelines.lab import soak
from pipelines.settings import get_settings

D1, D2, D3 = dt.date(2026, 1, 20), dt.date(2026, 1, 21), dt.date(2026, 2, 10)


@pytest.fixture
def con():
    c = duckdb.connect()
    c.execute("create schema marts")
    c.execute("""create table marts.fct_account_tiers_daily (account_id varchar, as_of_date date,
                 account_status varchar, tier_number integer, assigned_tier varchar)""")
    c.execute("""create table marts.dim_account_tier_history (account_id varchar, tier_number integer,
                 valid_from date, valid_to date, is_current boolean, change_type varchar)""")
    c.execute("""create table marts.fct_mrr_account_monthly (account_id varchar, month_start_date date,
                 mrr_reporting decimal(18, 2))""")
    c.execute("""create table marts.fct_mrr_movements (account_id varchar, month_start_date date,
                 movement_type varchar, mrr_change_reporting decimal(18, 2))""")
    c.execute("""create table marts.rpt_segment_retention_monthly (period_start_date date, period_last_month date,
                 segment_dimension varchar, starting_mrr_reporting decimal(18, 2), new_mrr_reporting decimal(18, 2),
                 expansion_mrr_reporting decimal(18, 2), reactivation_mrr_reporting decimal(18, 2),
                 contraction_mrr_reporting decimal(18, 2), churned_mrr_reporting decimal(18, 2),
                 ending_mrr_reporting decimal(18, 2))""")
    # a: Core (2) on D1, D2, gone on D3 (churned); b: Scale on D1, Core from D2
    c.execute("""insert into marts.fct_account_tiers_daily values
        ('a', '2026-01-20', 'live', 2, 'Core'), ('a', '2026-01-21', 'live', 2, 'Core'),
        ('a', '2026-02-10', 'churned', null, null),
        ('b', '2026-01-20', 'live', 3, 'Scale'), ('b', '2026-01-21', 'live', 2, 'Core'),
        ('b', '2026-02-10', 'live', 2, 'Core')""")
    c.execute("""insert into marts.dim_account_tier_history values
        ('a', 2, '2026-01-20', '2026-02-10', false, 'initial'),
        ('b', 3, '2026-01-20', '2026-01-21', false, 'initial'),
        ('b', 2, '2026-01-21', null, true, 'upgrade')""")
    c.execute("""insert into marts.fct_mrr_account_monthly values
        ('a', '2026-01-01', 100), ('a', '2026-02-01', 0), ('b', '2026-01-01', 50), ('b', '2026-02-01', 80)""")
    c.execute("""insert into marts.fct_mrr_movements values
        ('a', '2026-01-01', 'new', 100), ('b', '2026-01-01', 'new', 50),
        ('a', '2026-02-01', 'churn', -100), ('b', '2026-02-01', 'expansion', 30)""")
    c.execute("""insert into marts.rpt_segment_retention_monthly values
        ('2026-01-01', '2026-01-01', 'total', 0, 150, 0, 0, 0, 0, 150),
        ('2026-02-01', '2026-02-01', 'total', 150, 0, 30, 0, 0, 100, 80)""")
    c.execute("create table marts.rpt_segment_retention_quarterly as select * from marts.rpt_segment_retention_monthly "
              "where false")
    c.execute("""insert into marts.rpt_segment_retention_quarterly values
        ('2026-01-01', '2026-02-01', 'total', 0, 80, 0, 0, 0, 0, 80)""")
    yield c
    c.close()


def test_sound_marts_break_no_invariant(con) -> None:
    assert soak._tier_history_contiguous(con, D3, Path()) == []
    assert soak._movements_sum(con, D3, Path()) == []


def test_overlapping_periods_and_a_second_current_period(con) -> None:
    con.execute("update marts.dim_account_tier_history set valid_to = '2026-01-25' where account_id = 'b' and tier_number = 3")
    con.execute("insert into marts.dim_account_tier_history values ('a', 2, '2026-02-10', null, true, 'reactivated')")
    problems = {r["problem"] for r in soak._tier_history_contiguous(con, D3, Path())}
    assert "periods overlap or end before they start" in problems
    assert "a night without a tier inside a period" in problems  # a's churned night now covered


def test_a_period_split_without_a_change(con) -> None:
    con.execute("delete from marts.dim_account_tier_history where account_id = 'b' and tier_number = 2")
    con.execute("""insert into marts.dim_account_tier_history values
        ('b', 2, '2026-01-21', '2026-02-10', false, 'upgrade'), ('b', 2, '2026-02-10', null, true, 'downgrade')""")
    rows = soak._tier_history_contiguous(con, D3, Path())
    assert [(r["account_id"], r["as_of_date"], r["problem"]) for r in rows] == [
        ("b", "2026-02-10", "the same tier on consecutive nights in two periods")]


def test_a_night_outside_every_period(con) -> None:
    con.execute("update marts.dim_account_tier_history set valid_to = '2026-01-21' where account_id = 'a'")
    rows = soak._tier_history_contiguous(con, D3, Path())
    assert [(r["account_id"], r["as_of_date"]) for r in rows] == [("a", "2026-01-21")]


def test_movements_that_do_not_sum_to_the_mrr_change(con) -> None:
    con.execute("update marts.fct_mrr_movements set mrr_change_reporting = 20 where movement_type = 'expansion'")
    con.execute("update marts.rpt_segment_retention_monthly set churned_mrr_reporting = 90 "
                "where period_start_date = '2026-02-01'")
    con.execute("update marts.rpt_segment_retention_quarterly set ending_mrr_reporting = 90")
    rows = soak._movements_sum(con, D3, Path())
    assert [(r.get("month_start_date") or r.get("period_start_date"), r["problem"]) for r in rows] == [
        ("2026-02-01", "movements do not sum to the change of total MRR"),
        ("2026-02-01", "the monthly report total does not balance, or differs from the MRR"),
        ("2026-01-01", "the quarterly report total does not balance, or differs from the MRR"),
    ]


def test_tiers_against_the_extract(con, tmp_path: Path) -> None:
    from tests.drops import write_csv

    drop = tmp_path / "drop"
    write_csv(drop / "crm" / "accounts.csv", [{"account_id": a} for a in ("a", "b", "c")])
    write_csv(drop / "billing" / "subscriptions.csv", [
        {"account_id": "a", "start_date": "2025-01-01", "end_date": "2026-02-10"},  # ended: churned
        {"account_id": "b", "start_date": "2025-01-01", "end_date": ""},
    ])
    rows = soak._tiers_match_extract(con, D3, drop)
    assert rows == [{"problem": "in the CRM extract, no daily tier row", "account_id": "c"}]
    con.execute("update marts.fct_account_tiers_daily set tier_number = 4 where account_id = 'a' and as_of_date = ?",
                [D3])
    assert next(r["problem"] for r in soak._tiers_match_extract(con, D3, drop)) == "a tier without a live subscription"


def test_scripted_expectations(con) -> None:
    history = {"mart": "dim_account_tier_history", "where": {"account_id": "b", "valid_from": "2026-01-21"},
               "values": {"change_type": "upgrade", "tier_number": 2, "valid_to": None, "is_current": True}}
    assert soak.check_expectation(con, history, D3) is None
    history["values"]["change_type"] = "reactivated"
    assert "reactivated" in soak.check_expectation(con, history, D3)
    absent = {"mart": "fct_account_tiers_daily", "where": {"account_id": "a", "as_of_date": "$night"}, "values": None}
    assert soak.check_expectation(con, absent, dt.date(2026, 3, 1)) is None
    assert "found 1" in soak.check_expectation(con, absent, D3)
    money = {"mart": "fct_mrr_account_monthly", "where": {"account_id": "b", "month_start_date": "2026-02-01"},
             "values": {"mrr_reporting": "80"}}
    assert soak.check_expectation(con, money, D3) is None
    assert soak._same(Decimal("0.400000"), "0.4") and not soak._same(None, 0) and not soak._same(1, True)


def test_a_corrupt_drop_and_the_published_fingerprint(tmp_path: Path) -> None:
    from tests.drops import make_drop

    settings = get_settings(home=tmp_path / "home")
    drop = make_drop(settings.landing, D1)
    done = soak.corrupt_drop(drop)
    assert done["rows_corrupted"] == 1 and done["rows"] == 2
    assert "twelve hundred" in (drop / "billing" / "subscriptions.csv").read_text()
    published = settings.published
    (published / "releases" / "r1").mkdir(parents=True)
    (published / "releases" / "r1" / "manifest.json").write_text("{}")
    (published / "current").symlink_to("releases/r1")
    before = soak.published_fingerprint(settings)
    assert before["current"] == "-> releases/r1" and "releases/r1/manifest.json" in before
    (published / "releases" / "r1" / "manifest.json").write_text("{ }")
    assert soak.published_fingerprint(settings) != before


def test_plan_nights() -> None:
    assert soak.plan_nights(D1, 3, 7) == [D1, D1 + dt.timedelta(days=7), D1 + dt.timedelta(days=14)]
    with pytest.raises(ValueError):
        soak.plan_nights(D1, 0)
