"""Customer segment marts (ISSUE 3) on a small generated dataset, with the real
generator, loader, dbt and DuckDB.

Nights run in order like the pipeline (``dbt build`` per as-of date of the customer
marts, everything upstream of them, the snapshots and the ``assert_customers_*`` /
``assert_tiers_*`` data tests; any failing test fails the night; the
``mart_nights`` fixture of tests/dbt/conftest.py, shared with the revenue tests). The
tests then check with their own SQL that the tier history reconciles with the daily
tiers, that the incremental usage model equals a full recomputation, that signals fire
on entering a state only, and that a rerun and a backfill of an as-of date give the
same tables as the original nights.
"""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pytest

from pipelines.contract import get_entity
from pipelines.intake import lake
from tests.dbt.conftest import MartNights


@pytest.fixture
def con(mart_nights: MartNights) -> Iterator[duckdb.DuckDBPyConnection]:
    with duckdb.connect(str(mart_nights.settings.warehouse), read_only=True) as connection:
        yield connection


def test_daily_marts_hold_every_night(mart_nights: MartNights, con: duckdb.DuckDBPyConnection) -> None:
    accounts = con.execute("select count(*) from marts.dim_accounts").fetchone()[0]
    assert accounts > 0
    for mart in ("fct_account_tiers_daily", "fct_account_health_daily", "fct_account_segments_daily"):
        per_date = dict(con.execute(f"select as_of_date, count(*) from marts.{mart} group by 1").fetchall())
        assert sorted(per_date) == mart_nights.run_dates, mart
        assert per_date[mart_nights.run_dates[-1]] == accounts, mart


def test_published_columns_for_revenue_reporting(con: duckdb.DuckDBPyConnection) -> None:
    """Revenue reporting places accounts in segments with these columns: keep them."""
    wanted = {"account_id", "as_of_date", "assigned_tier", "tier_number", "health_status", "value_band",
              "company_size_band", "industry_group", "region", "plan_name", "adoption_stage"}
    for mart in ("fct_account_tiers_daily", "fct_account_health_daily", "fct_account_segments_daily",
                 "dim_accounts"):
        columns = {r[0] for r in con.execute(
            "select column_name from information_schema.columns where table_schema = 'marts' and table_name = ?",
            [mart]).fetchall()}
        assert wanted <= columns, (mart, wanted - columns)
    tiers = {r[0] for r in con.execute(
        "select distinct assigned_tier from marts.fct_account_tiers_daily where account_status = 'live'").fetchall()}
    assert tiers <= {"Strategic", "Core", "Scale", "Tech-touch"}
    # churned accounts and prospects have no tier (never Tech-touch)
    without = con.execute(
        "select count(*), count(assigned_tier) from marts.fct_account_tiers_daily where account_status <> 'live'"
    ).fetchone()
    assert without[0] > 0 and without[1] == 0
    bad = con.execute("""
        select count(*) from marts.fct_account_tiers_daily
        where tier_number <> case assigned_tier when 'Strategic' then 1 when 'Core' then 2
                                                when 'Scale' then 3 when 'Tech-touch' then 4 end
    """).fetchone()[0]
    assert bad == 0


def test_tier_history_reconciles_with_daily_tiers(con: duckdb.DuckDBPyConnection) -> None:
    daily = con.execute(
        "select account_id, as_of_date, tier_number from marts.fct_account_tiers_daily order by 1, 2"
    ).fetchall()
    history = con.execute(
        "select account_id, valid_from, valid_to, tier_number, is_current from marts.dim_account_tier_history"
    ).fetchall()
    # every daily row with a tier in exactly one period of the same tier; a day without a tier
    # (no live subscription) in none
    for account_id, as_of_date, tier in daily:
        covering = [h for h in history if h[0] == account_id and h[1] <= as_of_date and (h[2] is None or as_of_date < h[2])]
        if tier is None:
            assert covering == [], (account_id, as_of_date)
        else:
            assert len(covering) == 1 and covering[0][3] == tier, (account_id, as_of_date)
    # periods start exactly where the daily tier changes to a tier
    changes, previous = set(), {}
    for account_id, as_of_date, tier in daily:
        if tier is not None and previous.get(account_id, "none") != tier:
            changes.add((account_id, as_of_date))
        previous[account_id] = tier
    assert changes == {(h[0], h[1]) for h in history}
    # at most one current period per account
    current = [h[0] for h in history if h[4]]
    assert len(current) == len(set(current))


def test_generated_nights_move_tiers(mart_nights: MartNights, con: duckdb.DuckDBPyConnection) -> None:
    """The generator scripts tier moves on the last nights (pipelines.lab.generate.billing.TIER_MOVES),
    so the migration and SCD2 tests above see real changes: an upgrade at once, a downgrade held
    until the renewal, and a downgrade once the renewal has passed."""
    last = mart_nights.run_dates[-1]
    actions = dict(con.execute(
        "select migration_action, count(*) from marts.fct_account_tiers_daily where as_of_date = ? group by 1",
        [last]).fetchall())
    assert actions.get("upgrade", 0) >= 1 and actions.get("held", 0) >= 1 and actions.get("downgrade", 0) >= 1, actions
    # the account downgraded on the last night was held on the nights before, until its renewal
    held_then_down = con.execute("""
        select d.account_id, d.previous_tier_number, d.tier_number, h.pending_downgrade_date
        from marts.fct_account_tiers_daily as d
        inner join marts.fct_account_tiers_daily as h
            on h.account_id = d.account_id and h.as_of_date = d.as_of_date - 1
        where d.as_of_date = ? and d.migration_action = 'downgrade' and h.migration_action = 'held'
    """, [last]).fetchall()
    assert held_then_down and all(r[3] == last and r[2] > r[1] for r in held_then_down), held_then_down
    changes = {r[0] for r in con.execute("select distinct change_type from marts.dim_account_tier_history").fetchall()}
    assert {"initial", "upgrade", "downgrade"} <= changes, changes


def test_tier_distribution_exists(con: duckdb.DuckDBPyConnection) -> None:
    rows = con.execute(
        "select tier_number, tier_name, account_share, arr_share from marts.rpt_tier_distribution order by 1"
    ).fetchall()
    assert [r[:2] for r in rows] == [(1, "Strategic"), (2, "Core"), (3, "Scale"), (4, "Tech-touch")]
    assert abs(sum(r[2] for r in rows) - 1) < 1e-9
    assert abs(sum(r[3] for r in rows) - 1) < 1e-9


def test_incremental_usage_equals_full_recomputation(mart_nights: MartNights, con: duckdb.DuckDBPyConnection) -> None:
    last = mart_nights.run_dates[-1]
    incremental = con.execute("""
        select account_id, activity_date, event_count, active_user_count, feature_count
        from intermediate.int_usage_account_days_aggregated order by all
    """).fetchall()
    events = lake.relation_sql(mart_nights.settings.lake, get_entity("usage", "events"))
    full = con.execute(f"""
        select trim(account_id), cast(occurred_at as date), count(*), count(distinct trim(user_id)),
               count(distinct nullif(lower(trim(feature)), ''))
        from {events}
        where _run_date <= ? and cast(occurred_at as date) <= ?
        group by all order by all
    """, [last, last]).fetchall()
    assert incremental == full


def test_signals_fire_on_entering_a_state_only(mart_nights: MartNights, con: duckdb.DuckDBPyConnection) -> None:
    first, second = mart_nights.run_dates[:2]
    repeats = con.execute("""
        select a.account_id, a.signal_type
        from marts.fct_account_signals as a
        inner join marts.fct_account_signals as b
            on a.account_id = b.account_id and a.signal_type = b.signal_type
            and b.as_of_date = a.as_of_date + 1
        where a.signal_type <> 'tier_changed'
    """).fetchall()
    assert repeats == []
    assert con.execute("select count(*) from marts.fct_account_signals where as_of_date = ?", [first]).fetchone()[0] > 0
    assert con.execute("select count(*) from marts.fct_account_signals where as_of_date = ?", [second]).fetchone()[0] < (
        con.execute("select count(*) from marts.fct_account_signals where as_of_date = ?", [first]).fetchone()[0]
    )


def test_migration_never_downgrades_before_renewal(con: duckdb.DuckDBPyConnection) -> None:
    early = con.execute("""
        select count(*) from marts.fct_account_tiers_daily
        where migration_action = 'downgrade' and previous_tier_number is not null
          and next_renewal_date is not null
          and not exists (
              select 1 from marts.fct_account_tiers_daily as p
              where p.account_id = fct_account_tiers_daily.account_id
                and p.as_of_date < fct_account_tiers_daily.as_of_date
                and p.is_downgrade_pending
                and p.pending_downgrade_date <= fct_account_tiers_daily.as_of_date)
    """).fetchone()[0]
    assert early == 0


def test_rerun_of_last_night_changes_nothing(mart_nights: MartNights, restated_nights: dict) -> None:
    """The last night built again on a warehouse that holds it (the last build of ``restated_nights``)."""
    last = mart_nights.run_dates[-1]
    assert restated_nights[last].customers == mart_nights.tables[last].customers


def test_backfill_of_an_earlier_night_then_replay_changes_nothing(
    mart_nights: MartNights, restated_nights: dict
) -> None:
    """Earlier nights rebuilt while later ones are in the warehouse, then every later night
    replayed in order (``restated_nights``: the first night restated, the second backfilled, ...);
    each build ran the singular data tests (the history reconciliation among them), so each
    passed."""
    run_dates = mart_nights.run_dates
    assert restated_nights[run_dates[1]].tiers_on_the_night > 0
    assert restated_nights[run_dates[-1]].customers == mart_nights.tables[run_dates[-1]].customers
