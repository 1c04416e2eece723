"""The CI soak: every scripted lifecycle happens on the run's own nights, every night publishes,
and every invariant holds after every night (pipelines/lab/soak.py, the functions the DAG calls).

The compact schedule (``soak.COMPACT_NIGHTS``: 2026-01-20, -21, 02-10, 03-03) shows all 18
scripted lifecycles in four nights; the second night is first delivered corrupt and must fail
without changing a published byte. What each lifecycle must produce in the published marts
is written by the generator next to the drops (scripted_lifecycles.json) and checked by the
soak after every night from the night it happens on.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from pipelines.lab.generate.lifecycles import LIFECYCLES, SCRIPT_FILE
from pipelines.lab.soak import COMPACT_NIGHTS, NightResult, SoakReport, check_night, soak
from pipelines.settings import get_settings

pytestmark = pytest.mark.e2e

#: The night each scripted lifecycle shows on the compact schedule.
NIGHT_OF = {
    "new": "2026-01-21", "upgrade": "2026-01-21", "seat_change": "2026-01-21", "late_event": "2026-01-21",
    "duplicate_event": "2026-01-21",
    "trial_to_paid": "2026-02-10", "expansion": "2026-02-10", "churn": "2026-02-10", "currency_change": "2026-02-10",
    "reactivation_in_window": "2026-02-10", "past_due": "2026-02-10", "restated_month": "2026-02-10",
    "contraction": "2026-03-03", "reactivation_after_window": "2026-03-03", "held_downgrade": "2026-03-03",
    "crm_restored": "2026-03-03", "csm_change": "2026-03-03", "interval_change": "2026-03-03",
}


@pytest.fixture(scope="module")
def soaked(tmp_path_factory: pytest.TempPathFactory) -> SoakReport:
    settings = get_settings(home=tmp_path_factory.mktemp("soak") / "home")
    return soak(settings, COMPACT_NIGHTS, accounts=12, seed=7, progress=lambda _line: None)


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    """Closes what a test opened (a dbt session) however the test ends."""
    with ExitStack() as stack:
        yield stack


def test_every_night_publishes_and_every_invariant_holds(soaked: SoakReport) -> None:
    assert soaked.ok
    assert [r.night for r in soaked.results] == [d.isoformat() for d in COMPACT_NIGHTS]
    assert all(r.release and not r.problems for r in soaked.results)
    assert all(r.live_accounts > 20 and r.tiers == r.live_accounts for r in soaked.results)


def test_every_scripted_lifecycle_happens_inside_the_run_and_holds(soaked: SoakReport) -> None:
    assert soaked.not_scheduled == {}
    assert sorted(NIGHT_OF) == sorted(LIFECYCLES)
    assert {lc["lifecycle"]: lc["night"] for lc in soaked.lifecycles} == NIGHT_OF
    unchecked = [lc["lifecycle"] for lc in soaked.lifecycles if not lc["checks"] or not lc["held"]]
    assert unchecked == []
    assert soaked.results[-1].checked_outcomes >= 35


def test_a_corrupt_night_fails_without_touching_the_publish(soaked: SoakReport) -> None:
    failed = soaked.failed_night
    assert failed is not None and failed["night"] == "2026-01-21"
    assert failed["ok"] and failed["published_changed"] == [] and failed["published_files"] > 10
    assert failed["error"].startswith("QualityGateFailed: quarantine check failed")
    # the good drop, re-delivered, published that night
    assert soaked.results[1].release.startswith("2026-01-21_")


def test_the_soak_notices_an_outcome_that_does_not_hold(soaked: SoakReport) -> None:
    """The scripted checks can fail: the same published marts against a planted wrong outcome
    (the pre-fix label of a return to the CRM extract, issue 17) break the invariant."""
    settings = get_settings(home=soaked.home)
    script = json.loads((settings.landing / SCRIPT_FILE).read_text())
    restored = next(lc for lc in script["lifecycles"] if lc["lifecycle"] == "crm_restored")
    for expectation in restored["expect"]:
        if expectation["values"] and expectation["values"].get("change_type") == "reactivated":
            expectation["values"]["change_type"] = "downgrade"
    script["lifecycles"] = [restored]
    result = check_night(settings, COMPACT_NIGHTS[-1], script, NightResult(COMPACT_NIGHTS[-1].isoformat(), 0.0))
    assert [p.invariant for p in result.problems] == ["scripted_outcomes"]
    assert "'expected': 'downgrade', 'found': 'reactivated'" in result.problems[0].message
    assert dt.date.fromisoformat(result.night) == COMPACT_NIGHTS[-1]


#: The monthly billing-history models and what reads them: a night keeps closed months of the
#: incremental ones (int_account_mrr_monthly, int_account_mrr_periods, int_account_segments_monthly,
#: int_account_health_backtest_points), and
#: every one must equal a rebuild from the last night's snapshot.
MONTHLY = (
    "intermediate.int_account_mrr_monthly", "intermediate.int_account_mrr_periods",
    "intermediate.int_account_segments_monthly", "intermediate.int_segment_retention_periods",
    "intermediate.int_account_health_backtest_points",
    "marts.fct_mrr_account_monthly", "marts.fct_mrr_movements", "marts.rpt_segment_retention_monthly",
    "marts.rpt_segment_retention_quarterly", "marts.rpt_cohort_retention", "marts.rpt_health_backtest",
)
#: Bookkeeping columns: the night that computed a kept row (a full refresh computes all on its night);
#: a kept MRR month's fingerprint is of its inputs before the as-of month of the night that computed it.
BOOKKEEPING = ("computed_as_of_date",)
BOOKKEEPING_OF = {"intermediate.int_account_mrr_monthly": ("inputs_fingerprint", "inputs_boundary_month")}


def _monthly_tables(warehouse) -> dict[str, list[tuple]]:
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        out = {}
        for relation in MONTHLY:
            schema, table = relation.split(".")
            columns = [r[0] for r in con.execute(
                "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
                "order by ordinal_position", [schema, table]).fetchall()]
            assert columns, f"{relation} is not in the warehouse"
            bookkeeping = BOOKKEEPING + BOOKKEEPING_OF.get(relation, ())
            kept = ", ".join(f'"{c}"' for c in columns if c not in bookkeeping)
            out[relation] = con.execute(f"select {kept} from {relation} order by all").fetchall()
        return out


def test_closed_months_kept_by_the_nights_equal_a_full_refresh(soaked: SoakReport, tmp_path) -> None:
    """The nights kept closed months (January's memberships of an account nothing happened to were
    computed on 2026-01-21; November's MRR months and periods on the first night, 2026-01-20),
    recomputed a closed month whose billing was restated (the restated lifecycle's January, on
    2026-02-10), and every monthly mart equals a ``--full-refresh`` build of the last night."""
    import shutil

    import duckdb

    from pipelines.build.dbt import run_dbt

    settings = get_settings(home=soaked.home)
    last = COMPACT_NIGHTS[-1]
    script = json.loads((settings.landing / SCRIPT_FILE).read_text())
    restated = next(lc for lc in script["lifecycles"] if lc["lifecycle"] == "restated_month")
    restated_on = dt.date.fromisoformat(restated["night"])
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        computed = dict(con.execute(
            "select account_id, max(computed_as_of_date) from intermediate.int_account_segments_monthly "
            "where month_start_date = '2026-01-01' group by account_id").fetchall())
        points = con.execute(
            "select count(*) from intermediate.int_account_health_backtest_points").fetchone()[0]
        mrr_computed = dict(con.execute(
            "select account_id, max(computed_as_of_date) from intermediate.int_account_mrr_monthly "
            "where month_start_date = '2025-11-01' group by account_id").fetchall())
        periods_computed = dict(con.execute(
            "select account_id, max(computed_as_of_date) from intermediate.int_account_mrr_periods "
            "where period_start_date = '2025-11-01' and period_type = 'month' group by account_id").fetchall())
    assert restated_on == dt.date(2026, 2, 10)
    assert computed[restated["account_id"]] == restated_on
    assert dt.date(2026, 1, 21) in computed.values()
    # November's MRR month and period are kept from the first night (the restated January lies in
    # the months every night recomputes; the next test restates months long closed)
    assert dt.date(2026, 1, 20) in mrr_computed.values() and dt.date(2026, 1, 20) in periods_computed.values()
    assert points > 0
    nightly = _monthly_tables(settings.warehouse)

    home = tmp_path / "home"
    shutil.copytree(settings.home, home, symlinks=True)
    rebuilt = get_settings(home=home)
    run_dbt(rebuilt, last, "run", "--full-refresh", "--select", *(r.split(".")[1] for r in MONTHLY))
    full = _monthly_tables(rebuilt.warehouse)

    assert all(nightly[relation] for relation in MONTHLY if "backtest" not in relation)
    for relation in MONTHLY:
        assert nightly[relation] == full[relation], relation


def test_a_restated_old_month_recomputes_its_account_and_equals_a_full_refresh(
    soaked: SoakReport, tmp_path, stack: ExitStack
) -> None:
    """A restatement of months long closed (the amount of a subscription that started before November,
    the earliest to end, rewritten in the last night's billing snapshot): the last night run again
    recomputes every MRR month and period of that account and keeps the other accounts' closed months
    (November still from the first night), and every monthly mart equals a ``--full-refresh`` build."""
    import shutil

    import duckdb

    from pipelines.build.dbt import dbt_session, run_dbt

    last = COMPACT_NIGHTS[-1]
    home = tmp_path / "home"
    shutil.copytree(soaked.home, home, symlinks=True)
    settings = get_settings(home=home)
    drop = settings.lake / "raw" / "billing" / "subscriptions" / f"_run_date={last.isoformat()}"
    files = sorted(drop.glob("*.parquet"))
    assert files, f"no billing snapshot in {drop}"
    with duckdb.connect() as con:
        source = ", ".join(f"'{f}'" for f in files)
        restated_id, account = con.execute(
            f"select subscription_id, account_id from read_parquet([{source}]) "
            "where start_date < '2025-11-01' and not coalesce(plan ilike '%trial%', false) "
            "order by end_date is null, end_date, subscription_id limit 1"
        ).fetchone()
        restated = home / "restated.parquet"
        con.execute(
            f"copy (select * replace (case when subscription_id = '{restated_id}' then amount + 100 else amount end "
            f"as amount) from read_parquet([{source}])) to '{restated}' (format parquet)"
        )
    for f in files:
        f.unlink()
    shutil.move(restated, drop / files[0].name)

    dbt = stack.enter_context(dbt_session(settings))  # one dbt process for the two commands
    run_dbt(settings, last, "run", session=dbt)
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        nights = dict(
            con.execute(
                "select account_id = ?, list(distinct computed_as_of_date order by computed_as_of_date) "
                "from intermediate.int_account_mrr_monthly where month_start_date = '2025-11-01' group by 1",
                [account],
            ).fetchall()
        )
        restated_periods = con.execute(
            "select distinct computed_as_of_date from intermediate.int_account_mrr_periods where account_id = ?",
            [account],
        ).fetchall()
    assert nights[True] == [last]
    assert nights[False][0] == COMPACT_NIGHTS[0]
    assert restated_periods == [(last,)]
    nightly = _monthly_tables(settings.warehouse)

    run_dbt(settings, last, "run", "--full-refresh", "--select", *(r.split(".")[1] for r in MONTHLY), session=dbt)
    full = _monthly_tables(settings.warehouse)
    for relation in MONTHLY:
        assert nightly[relation] == full[relation], relation
