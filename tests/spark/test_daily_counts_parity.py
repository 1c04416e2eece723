"""DuckDB vs Spark with usage delivered as daily counts (``usage/daily_counts``, issue 18): the
counts' own models (subscriptions resolved to accounts, the latest drop of a key, the Spark
increment overwriting whole activity dates) and the usage measures built from them give the same
marts on both engines, night after night.

A small generated business whose usage is rolled up into daily counts per subscription with
active users (``pipelines.lab.generate.daily_counts.roll_up_events``), events off. Both nights run
check, ingest, the models and the publish on both engines (the data and unit tests run on DuckDB
in the nights and in tests/e2e; here what differs between the engines is the SQL), and every mart
and history is compared after each (``compare_engines`` of test_engine_parity).
"""

from __future__ import annotations

import datetime as dt

import pytest

from pipelines.build.dbt import run_dbt
from pipelines.lab.generate import generate
from pipelines.lab.generate.daily_counts import roll_up_events
from pipelines.ops import nightly
from pipelines.settings import Settings
from tests.spark.test_engine_parity import MODELS_ONLY, compare_engines

pytestmark = [pytest.mark.spark, pytest.mark.timeout(5400)]

IN_USE = ("crm/accounts", "crm/support_cases", "billing/subscriptions", "usage/daily_counts")


def test_daily_counts_build_the_same_marts_on_both_engines(tmp_path) -> None:
    landing = tmp_path / "landing"
    common = {"landing_dir": landing, "spark_driver_memory": "2g", "spark_master": "local[2]",
              "entities_in_use": IN_USE}
    duck = Settings(home=tmp_path / "duckdb", engine="duckdb", **common)
    spark = Settings(home=tmp_path / "spark", engine="spark", **common)
    summary = generate(landing, accounts=20, start_date=dt.date(2025, 9, 1), days=150, drop_days=2, seed=13)
    run_dates = [dt.date.fromisoformat(str(d)) for d in summary.run_dates]
    roll_up_events(landing, run_dates, with_users=True, by_subscription=True)
    for run_date in run_dates:
        for settings in (duck, spark):
            nightly.check_extracts(settings, run_date)
            nightly.ingest_sources(settings, run_date)
            run_dbt(settings, run_date, "build", *MODELS_ONLY)
            nightly.publish(settings, run_date, nightly.quality_gate(settings, run_date))
        counts = compare_engines(duck, spark)
        assert counts["marts.fct_account_health_daily"] > 0
    import duckdb

    with duckdb.connect(str(duck.warehouse), read_only=True) as con:
        usage = con.execute("""select count(*), count(product_usage_score) from marts.fct_account_health_daily
                               where as_of_date = ? and account_status = 'live'""", [run_dates[-1]]).fetchone()
        resolved = con.execute("select count(*) from intermediate.int_usage_daily_counts_resolved").fetchone()[0]
    assert usage[1] > 0 and resolved > 0  # the counts reached the health score on both engines
