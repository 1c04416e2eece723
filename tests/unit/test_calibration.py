"""Health calibration: proposals from a company's own distribution, band cut points, the
degenerate-night warning and --apply (pipelines/lab/calibration.py)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import pytest

from pipelines.lab.calibration import (
    _percentile,
    advise_measures,
    apply_vars,
    cut_points,
    health_distribution_check,
)
from pipelines.report.build import health_notes
from pipelines.settings import Settings

RUN = dt.date(2026, 3, 1)
PROJECT = Path(__file__).resolve().parents[2] / "dbt_project"
CONFIG = {"health_seat_utilisation_target": 0.8, "health_stickiness_target": 0.4, "health_breadth_target": 0.6,
          "health_usage_intensity_target": 0.2, "health_trend_full_scale": 0.5, "health_cs_recency_full_days": 30,
          "health_cs_recency_zero_days": 120}


def test_percentiles_interpolate_like_numpy() -> None:
    assert _percentile([1, 2, 3, 4], 0.75) == pytest.approx(3.25)
    assert _percentile([5], 0.1) == 5 and _percentile([], 0.5) is None


def test_thresholds_come_from_the_companys_percentile() -> None:
    """Intensity 100x the generator's: the proposed target is the company's 75th percentile, not
    the generator's 0.2; a measure whose percentile is 0 is left alone; recency full at the 25th
    and zero at the 75th percentile of days; absolute scales (NPS) are not calibrated."""
    con = duckdb.connect()
    con.execute("""create table m as select 'live' as account_status, date '2026-03-01' as as_of_date,
        i * 5.0 as usage_intensity, 0.0 as seat_utilisation, null::double as stickiness, 0.5 as feature_breadth,
        (i - 10) / 20.0 as usage_trend, i * 4 as days_since_touchpoint, null::double as response_rate,
        0 as qbrs_held, 0 as qbrs_attended, 0 as open_cases, 0 as cases_in_lookback, null::double as avg_csat,
        0 as overdue_invoices, 0 as invoices_in_lookback, 9 as latest_nps_score
        from range(1, 21) as t(i)""")
    advice = {a.measure.column: a for a in advise_measures(con, "m", RUN, CONFIG, 0.75)}
    assert advice["usage_intensity"].proposed == {"health_usage_intensity_target": 76.2}  # 5 x 15.25
    assert advice["seat_utilisation"].proposed == {} and "is 0" in advice["seat_utilisation"].note
    assert advice["stickiness"].accounts == 0 and advice["stickiness"].proposed == {}
    assert advice["usage_trend"].proposed == {"health_trend_full_scale": 0.362}  # |(i-10)/20|: p75 0.3625
    assert advice["days_since_touchpoint"].proposed == {"health_cs_recency_full_days": 23,
                                                        "health_cs_recency_zero_days": 61}
    assert advice["latest_nps_score"].proposed == {} and "absolute scale" in advice["latest_nps_score"].note
    assert advice["usage_intensity"].current == {"health_usage_intensity_target": 0.2}


def test_cut_points_give_the_target_shares() -> None:
    scores = [float(s) for s in range(1, 101)]
    cuts = cut_points(scores, {"healthy": 0.65, "at-risk": 0.275, "critical": 0.085})
    healthy = sum(s >= cuts["health_healthy_min_score"] for s in scores) / 100
    critical = sum(s < cuts["health_at_risk_min_score"] for s in scores) / 100
    assert (healthy, critical) == (0.65, 0.08)
    # ties stay together: every account on one score is in one band
    tied = cut_points([50.0] * 10 + [90.0] * 10, {"healthy": 0.65, "at-risk": 0.275, "critical": 0.085})
    assert tied["health_healthy_min_score"] == 50.0


def test_degenerate_night_warns_and_names_the_command(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    con = duckdb.connect()
    con.execute("create schema marts")

    def night(healthy: int, at_risk: int) -> None:  # 20 live accounts, the rest critical
        con.execute(f"""create or replace table marts.fct_account_health_daily as
            select date '2026-03-01' as as_of_date, 'live' as account_status,
                case when i <= {healthy} then 'healthy' when i <= {healthy + at_risk} then 'at-risk'
                     else 'critical' end as health_status
            from range(1, 21) as t(i)""")

    night(19, 1)
    check = health_distribution_check(con, settings, RUN)
    assert check.status == "warning" and check.observed == 0.95
    assert "95% healthy" in check.message and "`segment-mart calibrate --run-date 2026-03-01`" in check.message
    assert "segment-mart calibrate --run-date 2026-03-01" in health_notes(check.message)
    night(0, 4)  # none healthy, as the company saw
    check = health_distribution_check(con, settings, RUN)
    assert check.status == "warning" and "A healthy share under 5%" in check.message
    night(1, 10)  # 5% is inside the default limits [0.05, 0.90]
    assert health_distribution_check(con, settings, RUN).status == "passed"
    night(18, 2)  # 90% too
    assert health_distribution_check(con, settings, RUN).status == "passed"


def test_apply_writes_the_vars_and_keeps_the_comments(tmp_path: Path) -> None:
    project = tmp_path / "dbt_project"
    project.mkdir()
    shutil.copy(PROJECT / "dbt_project.yml", project / "dbt_project.yml")
    apply_vars(project, {"health_usage_intensity_target": 17.6, "health_healthy_min_score": 67.8,
                         "health_cs_recency_zero_days": 61})
    text = (project / "dbt_project.yml").read_text()
    assert "  health_usage_intensity_target: 17.6            # usage events per licensed seat" in text
    assert "  health_healthy_min_score: 67.8                   # >= 70 healthy" in text
    import yaml

    config = yaml.safe_load(text)["vars"]
    assert (config["health_usage_intensity_target"], config["health_cs_recency_zero_days"]) == (17.6, 61)
    with pytest.raises(KeyError, match="sets no var no_such_var"):
        apply_vars(project, {"no_such_var": 1})


def test_the_published_report_shows_the_gates_health_warning(tmp_path: Path) -> None:
    """The report reads only its release: the gate's warning comes from the release's copy of the
    quality report, and is shown at the top with the command."""
    import json

    from pipelines.report.build import _health_warning

    release = tmp_path / "release"
    (release / "quality").mkdir(parents=True)
    warning = {"name": "health distribution", "kind": "health", "status": "warning",
               "message": "44 live accounts scored: 91% healthy ... `segment-mart calibrate --run-date 2026-02-27`"}
    (release / "quality" / "quality_report.json").write_text(json.dumps({"results": [
        {"name": "dbt tests", "kind": "dbt_test", "status": "passed", "message": "ok"}, warning]}))
    assert _health_warning(release) == warning["message"]
    warning["status"] = "passed"
    (release / "quality" / "quality_report.json").write_text(json.dumps({"results": [warning]}))
    assert _health_warning(release) is None and health_notes(None) == ""
