"""The health-score backtest on generated data whose answer is known: the generator makes the
sentiment component (NPS) strongly predictive of churn and the support component pure noise;
`segment-mart backtest` (past month ends scored by the nightly models in a scratch warehouse)
must rank them so (sentiment AUC >= 0.8, support within 0.3-0.7). The working warehouse stays
byte for byte unchanged. The night's build leaves dbt's data tests out (the documented setting
dbt_build_exclude): the backtest reads the warehouse and the manifest, never a test result."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

from pipelines.lab.backtest import backtest, backtest_points
from pipelines.lab.generate import generate
from pipelines.ops import nightly
from pipelines.settings import get_settings


def test_backtest_points_are_month_ends_with_a_full_window() -> None:
    assert backtest_points(dt.date(2026, 4, 1), 90, 3) == [dt.date(2025, 10, 31), dt.date(2025, 11, 30),
                                                             dt.date(2025, 12, 31)]
    assert backtest_points(dt.date(2026, 3, 31), 90, 2, every_months=2) == [dt.date(2025, 10, 31),
                                                                           dt.date(2025, 12, 31)]


def test_backtest_ranks_the_predictive_component_above_the_noise_one(tmp_path: Path) -> None:
    settings = get_settings(home=tmp_path / "home", dbt_build_exclude="resource_type:test")
    summary = generate(settings.landing, accounts=200, start_date=dt.date(2025, 1, 1), days=400, drop_days=1,
                       seed=5, noise_components=("support",), predictive_components=("sentiment",))
    run_date = dt.date.fromisoformat(str(summary.run_dates[-1]))
    nightly.check_extracts(settings, run_date)
    nightly.ingest_sources(settings, run_date)
    nightly.build(settings, run_date)
    before = hashlib.sha256(settings.warehouse.read_bytes()).hexdigest()

    result = backtest(settings, run_date, points=4, every_months=2)

    assert hashlib.sha256(settings.warehouse.read_bytes()).hexdigest() == before
    scores = {r["group_value"]: r for r in result.rows if r["analysis"] == "score"}
    predictive, noise = float(scores["sentiment_score"]["churn_auc"]), float(scores["support_score"]["churn_auc"])
    aucs = {k: r["churn_auc"] for k, r in scores.items()}
    assert scores["sentiment_score"]["churned_account_days"] >= 5, ("the data set needs churners", aucs)
    assert scores["support_score"]["churned_account_days"] >= 5, ("the data set needs churners", aucs)
    assert predictive >= 0.8, aucs
    assert 0.3 <= noise <= 0.7, aucs
    assert predictive - noise >= 0.25, aucs
    overall = next(r for r in result.rows if r["analysis"] == "overall")
    assert overall["account_days"] == sum(r["account_days"] for r in result.rows if r["analysis"] == "health_band")
    assert (result.out_dir / "report.html").exists() and (result.out_dir / "backtest.parquet").exists()
    assert "Sentiment (NPS)" in (result.out_dir / "report.html").read_text()
