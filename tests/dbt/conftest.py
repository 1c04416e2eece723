"""The nights the customer-mart and revenue-mart tests share (tests/dbt/test_customers_models.py,
tests/dbt/test_revenue_models.py): one small generated business, built night by night with the
real generator, loader, dbt and DuckDB, once per test session.

Each night is one ``dbt build`` for its as-of date selecting the customer and revenue marts,
everything upstream of them, the history models and the ``assert_customers_*``,
``assert_tiers_*`` and ``assert_revenue_*`` data tests (any failing test fails the night; the
unit tests run in tests/dbt/test_unit_tests.py). After every night the tables both modules compare
later are recorded.

The tests that rebuild nights do it in a copy of that home, so the nights stay as built for the
tests that only read them: :func:`restated_nights` restates the first night and replays every
later one in order (the documented way to restate an older night, docs/operations.md), recording
the tables after each. Its last build is also the rerun of the last night: the warehouse then
holds every night as originally built (the earlier ones restated, each compared with its
original) and the last night itself. The restated builds run the singular data tests (the
business rules, the history reconciliation among them) but not the generic ones (not_null,
unique, relationships, accepted values: two thirds of a build's CPU), which the original nights
ran on the same tables that the restated ones must then equal.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pytest

from pipelines.build.dbt import DbtSession, run_dbt
from pipelines.intake.ingest import ingest
from pipelines.lab.generate import generate
from pipelines.settings import Settings

CUSTOMER_MARTS = (
    "dim_accounts",
    "fct_account_health_daily",
    "fct_account_segments_daily",
    "fct_account_tiers_daily",
    "dim_account_tier_history",
    "rpt_tier_distribution",
    "rpt_coverage_by_tier",
    "rpt_coverage_by_csm",
    "fct_account_signals",
    "fct_account_actions_daily",
    "rpt_actions_weekly",
)
# The self-referencing / incremental intermediates and the snapshots must be identical too.
STATEFUL = (
    "intermediate.int_usage_account_days_aggregated",
    "intermediate.int_account_health_scored",
    "intermediate.int_account_segments_classified",
    "intermediate.int_account_tiers_assigned",
    "intermediate.int_account_signal_states",
    "intermediate.int_account_actions_tracked",
    "snapshots.snap_crm__accounts",
    "snapshots.snap_billing__subscriptions",
)
REVENUE_MARTS = (
    "fct_mrr_account_monthly",
    "fct_mrr_movements",
    "rpt_segment_retention_monthly",
    "rpt_segment_retention_quarterly",
    "rpt_cohort_retention",
    "rpt_segment_unit_economics",
)
#: The account marts' daily rows the revenue segments read.
ACCOUNT_HISTORY_MARTS = (
    "fct_account_tiers_daily",
    "fct_account_health_daily",
    "fct_account_segments_daily",
)
# cautious: a test of another area's models is run only when all its models are built here
SELECT = (
    "--select",
    "+path:models/marts/customers",
    "+path:models/marts/actions",
    "path:models/history",
    "+path:models/marts/revenue",
    "path:data-tests/assert_customers_*",
    "path:data-tests/assert_tiers_*",
    "path:data-tests/assert_revenue_*",
    "--indirect-selection",
    "cautious",
    # as in a production night (pipelines.ops.nightly.build); tests/dbt/test_unit_tests.py runs them
    "--exclude-resource-type",
    "unit_test",
)
#: The generator scripts tier moves over the last three nights (pipelines.lab.generate.billing.TIER_MOVES);
#: the night before them shows the tiers they move from.
DROP_DAYS = 4


def customer_tables(warehouse: Path) -> dict[str, list[tuple]]:
    """Every customer mart and stateful model, fully sorted, to compare builds exactly."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        names = [f"marts.{m}" for m in CUSTOMER_MARTS] + list(STATEFUL)
        return {name: con.execute(f"select * from {name} order by all").fetchall() for name in names}


def revenue_marts(warehouse: Path) -> dict[str, list[tuple]]:
    """Every revenue mart, fully sorted, so two builds can be compared exactly."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {mart: con.execute(f"select * from marts.{mart} order by all").fetchall() for mart in REVENUE_MARTS}


def account_history(warehouse: Path, run_date: dt.date) -> dict[str, list[tuple]]:
    """The account marts' daily rows the revenue segments read for ``run_date``."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {
            mart: con.execute(f"select * from marts.{mart} where as_of_date <= ? order by all", [run_date]).fetchall()
            for mart in ACCOUNT_HISTORY_MARTS
        }


@dataclass(frozen=True)
class Tables:
    """What a night left in the warehouse: customer tables, revenue marts, account history up to it."""

    customers: dict[str, list[tuple]]
    revenue: dict[str, list[tuple]]
    history: dict[str, list[tuple]]
    tiers_on_the_night: int  # rows of fct_account_tiers_daily for the night's as-of date

    @classmethod
    def read(cls, warehouse: Path, run_date: dt.date) -> Tables:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            (tiers,) = con.execute(
                "select count(*) from marts.fct_account_tiers_daily where as_of_date = ?", [run_date]).fetchone()
        return cls(customer_tables(warehouse), revenue_marts(warehouse), account_history(warehouse, run_date), tiers)


@dataclass
class MartNights:
    settings: Settings
    run_dates: list[dt.date]
    tables: dict[dt.date, Tables] = field(default_factory=dict)

    def build(self, run_date: dt.date, session: DbtSession | None = None, *exclude: str) -> Tables:
        run_dbt(self.settings, run_date, "build", *SELECT, *(("--exclude", *exclude) if exclude else ()),
                session=session)
        return Tables.read(self.settings.warehouse, run_date)

    def copy(self, home: Path) -> MartNights:
        """The same nights in a copy of the home (warehouse, lake, landing, dbt target)."""
        shutil.copytree(self.settings.home, home, symlinks=True)
        return MartNights(_settings(home), self.run_dates, dict(self.tables))


def _settings(home: Path) -> Settings:
    return Settings(home=home, landing_dir=home / "landing", warehouse_path=home / "wh.duckdb")


@pytest.fixture(scope="session")
def mart_nights(tmp_path_factory: pytest.TempPathFactory) -> MartNights:
    settings = _settings(tmp_path_factory.mktemp("mart_nights") / "home")
    summary = generate(
        settings.landing,
        accounts=80,
        start_date=dt.date(2025, 1, 1),
        days=240,
        drop_days=DROP_DAYS,
        seed=11,
        events_per_account_day=2.0,
    )
    nights = MartNights(settings, [dt.date.fromisoformat(str(d)) for d in summary.run_dates])
    with DbtSession(settings) as dbt:  # one dbt process loads the project once for every night
        for run_date in nights.run_dates:
            ingest(settings, run_date)
            nights.tables[run_date] = nights.build(run_date, dbt)
    return nights


@pytest.fixture(scope="session")
def restated_nights(mart_nights: MartNights, tmp_path_factory: pytest.TempPathFactory) -> dict[dt.date, Tables]:
    """The tables after restating the first night, then after each later night replayed in order
    (in a copy of the home); every build runs the singular data tests, so each must pass."""
    copy = mart_nights.copy(tmp_path_factory.mktemp("mart_nights_restated") / "home")
    with DbtSession(copy.settings) as dbt:
        return {run_date: copy.build(run_date, dbt, "test_type:generic") for run_date in copy.run_dates}
