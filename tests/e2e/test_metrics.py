"""The metrics of the dbt semantic layer equal the marts' figures, from MetricFlow and from the
published views (docs/metrics.md), on the marts of the ``real_nights`` fixture.

Three ways to the same number: the mart's own column (rpt_segment_retention_*, computed in
int_segment_retention_periods), MetricFlow's answer (the real ``mf`` CLI through
``segment-mart metrics``' helper, on the working warehouse) and the published SQL view
(generated from dbt's semantic manifest, read from the published file). A definition that
drifts from the mart fails :func:`test_metricflow_equals_the_marts_every_period_and_segment`;
:func:`test_a_drifted_definition_is_caught` proves the comparison catches one.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from pipelines.release import open_published, read_manifest
from pipelines.release.metric_views import VIEWS, load_semantic_manifest, view_sql
from pipelines.release.metrics import run_mf
from pipelines.settings import get_settings

RATIOS = {  # metric stem -> column of rpt_segment_retention_<period>
    "grr": "gross_revenue_retention",
    "nrr": "net_revenue_retention",
    "logo_retention": "logo_retention",
    "expansion_rate": "expansion_rate",
    "quick_ratio": "quick_ratio",
}
GRAIN = {"monthly": "month", "quarterly": "quarter"}
#: the marts round ratios to DECIMAL(18,6); MetricFlow returns doubles
TOLERANCE = 1e-6

Key = tuple[str, str, str]  # (period start, segment dimension, segment value)


def mf_ratios(settings, period: str, where: tuple[str, ...] = ()) -> dict[Key, dict[str, float | None]]:
    """Every retention ratio of ``period`` from MetricFlow, by period and segment."""
    entity = f"retention_{GRAIN[period]}"
    out_csv = Path(settings.home) / f"mf-{period}.csv"
    args = ["query", "--metrics", ",".join(f"{m}_{period}" for m in RATIOS),
            "--group-by", f"metric_time__{GRAIN[period]},{entity}__segment_dimension,{entity}__segment_value",
            "--csv", str(out_csv), "--quiet"]
    for w in where:
        args += ["--where", w]
    done = run_mf(settings, args, capture=True)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    rows = {}
    with out_csv.open() as f:
        for row in csv.DictReader(f):
            key = (row[f"metric_time__{GRAIN[period]}"][:10], row[f"{entity}__segment_dimension"],
                   row[f"{entity}__segment_value"])
            rows[key] = {m: (float(row[f"{m}_{period}"]) if row[f"{m}_{period}"] != "" else None) for m in RATIOS}
    return rows


def mart_ratios(con, period: str) -> dict[Key, dict[str, float | None]]:
    cols = ", ".join(RATIOS.values())
    rows = con.execute(
        f"select cast(period_start_date as varchar), segment_dimension, segment_value, {cols} "
        f"from marts.rpt_segment_retention_{period}").fetchall()
    return {(p, d, v): {m: (None if x is None else float(x)) for m, x in zip(RATIOS, rest, strict=True)}
            for p, d, v, *rest in rows}


def view_ratios(con, view: str) -> dict[Key, dict[str, float | None]]:
    cols = ", ".join(RATIOS)
    rows = con.execute(
        f"select cast(period_start_date as varchar), segment_dimension, segment_value, {cols} from metrics.{view}"
    ).fetchall()
    return {(p, d, v): {m: (None if x is None else float(x)) for m, x in zip(RATIOS, rest, strict=True)}
            for p, d, v, *rest in rows}


def differences(expected: dict, actual: dict, limit: int = 10) -> list[str]:
    """Rows and ratios where ``actual`` differs from ``expected`` (empty when they agree)."""
    out = [f"{k}: missing" for k in sorted(set(expected) - set(actual))]
    out += [f"{k}: unexpected" for k in sorted(set(actual) - set(expected))]
    for key in sorted(set(expected) & set(actual)):
        for metric, want in expected[key].items():
            got = actual[key][metric]
            if (want is None) != (got is None) or (want is not None and abs(want - got) > TOLERANCE):
                out.append(f"{key} {metric}: mart {want}, metric {got}")
    return out[:limit]


@pytest.fixture(scope="module")
def published(real_nights):
    con = open_published(real_nights.settings)
    yield con
    con.close()


def last_complete_quarter(con) -> str:
    (quarter,) = con.execute(
        "select cast(max(period_start_date) as varchar) from marts.rpt_segment_retention_quarterly "
        "where is_period_complete").fetchone()
    assert quarter is not None
    return quarter


def test_nrr_by_tier_last_complete_quarter_is_one_number_three_ways(real_nights, published):
    """NRR, GRR, logo retention, expansion rate and quick ratio by tier for the last complete
    quarter: MetricFlow (filtered like a user would), the mart and the published view agree."""
    quarter = last_complete_quarter(published)
    from_mf = mf_ratios(real_nights.settings, "quarterly", where=(
        "{{ Dimension('retention_quarter__segment_dimension') }} = 'tier'",
        "{{ Dimension('retention_quarter__is_period_complete') }}",
        f"{{{{ TimeDimension('metric_time', 'quarter') }}}} = '{quarter}'",
    ))
    mart = {k: v for k, v in mart_ratios(published, "quarterly").items() if k[0] == quarter and k[1] == "tier"}
    rows = published.execute(
        "select cast(period_start_date as varchar), 'tier', segment_value, grr, nrr, logo_retention, "
        "expansion_rate, quick_ratio from metrics.retention_by_tier_quarter where period_start_date = ?",
        [quarter]).fetchall()
    view = {(p, d, v): {m: (None if x is None else float(x)) for m, x in zip(RATIOS, rest, strict=True)}
            for p, d, v, *rest in rows}
    assert len(mart) >= 3, mart  # several tiers, each with a starting book
    assert sum(r["nrr"] is not None for r in mart.values()) >= 3
    assert differences(mart, from_mf) == []
    assert differences(mart, view) == []


@pytest.mark.parametrize("period,view", [("monthly", "segment_retention_by_month"),
                                         ("quarterly", "segment_retention_by_quarter")])
def test_metricflow_equals_the_marts_every_period_and_segment(real_nights, published, period, view):
    """Every period (complete or not), segment dimension and segment: no drift anywhere."""
    mart = mart_ratios(published, period)
    assert len(mart) > 50
    assert differences(mart, mf_ratios(real_nights.settings, period)) == []
    assert differences(mart, view_ratios(published, view)) == []


def test_a_drifted_definition_is_caught(real_nights, tmp_path):
    """NRR defined without contraction (a plausible slip): MetricFlow and the generated view
    then disagree with the mart, and the comparison says where."""
    from pipelines.build.dbt import target_dir

    home = tmp_path / "home"
    home.mkdir()
    shutil.copytree(target_dir(real_nights.settings), home / "dbt_target")
    path = home / "dbt_target" / "semantic_manifest.json"
    manifest = json.loads(path.read_text())
    for model in manifest["semantic_models"]:
        for measure in model["measures"]:
            if measure["name"] == "monthly_net_retained_mrr":
                measure["expr"] = "starting_mrr_reporting + expansion_mrr_reporting - churned_mrr_reporting"
    path.write_text(json.dumps(manifest))
    drifted = get_settings(home=home, warehouse_path=real_nights.settings.warehouse)
    con = open_published(real_nights.settings)
    try:
        mart = mart_ratios(con, "monthly")
        drift = differences(mart, mf_ratios(drifted, "monthly"), limit=1000)
        (nrr_view,) = (v for v in VIEWS if v.name == "segment_retention_by_month")
        sql = view_sql(load_semantic_manifest(path), nrr_view)
        keys = "cast(period_start_date as varchar), segment_dimension, segment_value"
        rows = con.execute(f"select {keys}, grr, nrr, logo_retention, expansion_rate, quick_ratio from ({sql})").fetchall()
    finally:
        con.close()
    view = {(p, d, v): {m: (None if x is None else float(x)) for m, x in zip(RATIOS, rest, strict=True)}
            for p, d, v, *rest in rows}
    with_nrr = {k for k, v in mart.items() if v["nrr"] is not None}
    assert drift and all(" nrr:" in d for d in drift), drift[:5]
    assert len(with_nrr) > len(drift)  # only the segments with contraction moved
    where = {d.split(": mart")[0] for d in drift}  # the same rows and ratio in the view
    assert {d.split(": mart")[0] for d in differences(mart, view, limit=1000)} == where


def test_the_published_views_are_listed_in_the_manifest(real_nights, published):
    manifest = read_manifest(real_nights.settings)
    assert manifest is not None
    names = {r[0] for r in published.execute(
        "select view_name from duckdb_views() where schema_name = 'metrics'").fetchall()}
    assert names == set(manifest.metric_views) == {v.name for v in VIEWS}
    undocumented = published.execute(
        "select table_name, column_name from duckdb_columns() where schema_name = 'metrics' "
        "and (comment is null or comment = '')").fetchall()
    assert undocumented == []


def _mf_csv(settings, name: str, args: list[str]) -> list[dict[str, str]]:
    out_csv = Path(settings.home) / f"mf-{name}.csv"
    done = run_mf(settings, ["query", *args, "--csv", str(out_csv), "--quiet"], capture=True)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    with out_csv.open() as f:
        return list(csv.DictReader(f))


def test_tier_mix_and_health_metrics_equal_the_marts(real_nights, published):
    """Accounts, ARR and shares per tier and day (MetricFlow and view = rpt_tier_distribution);
    average health and accounts per tier (MetricFlow and view = fct_account_health_daily)."""
    settings = real_nights.settings
    mart = {(str(d), t): (n, float(a), float(s)) for d, t, n, a, s in published.execute(
        "select as_of_date, tier_name, account_count, account_share, arr_share from marts.rpt_tier_distribution"
    ).fetchall()}
    rows = _mf_csv(settings, "tiers", ["--metrics", "tier_accounts,tier_account_share,tier_arr_share",
                                       "--group-by", "metric_time__day,tier_day__tier_name"])
    from_mf = {(r["metric_time__day"][:10], r["tier_day__tier_name"]):
               (int(r["tier_accounts"]), float(r["tier_account_share"]), float(r["tier_arr_share"])) for r in rows}
    view = {(str(d), t): (n, float(a), float(s)) for d, t, n, a, s in published.execute(
        "select as_of_date, tier_name, accounts, account_share, arr_share from metrics.tier_mix_daily").fetchall()}
    assert len(mart) >= 3  # the run date's tiers (the mart holds the last as-of date)
    for got in (from_mf, view):
        assert set(got) == set(mart)
        for key, (n, account_share, arr_share) in mart.items():
            assert got[key][0] == n, key
            assert abs(got[key][1] - account_share) <= TOLERANCE and abs(got[key][2] - arr_share) <= TOLERANCE, key

    health = {(str(d), t): (n, float(a)) for d, t, n, a in published.execute(
        "select as_of_date, assigned_tier, count(*), avg(health_score) from marts.fct_account_health_daily "
        "where account_status = 'live' and assigned_tier is not null group by all").fetchall()}
    rows = _mf_csv(settings, "health", [
        "--metrics", "health_scored_accounts,average_health_score",
        "--group-by", "metric_time__day,account_health_day__assigned_tier",
        "--where", "{{ Dimension('account_health_day__assigned_tier') }} is not null"])
    from_mf = {(r["metric_time__day"][:10], r["account_health_day__assigned_tier"]):
               (int(r["health_scored_accounts"]), float(r["average_health_score"])) for r in rows}
    view = {(str(d), t): (n, float(a)) for d, t, n, a in published.execute(
        "select as_of_date, assigned_tier, accounts, average_health_score from metrics.health_by_tier_daily "
        "where assigned_tier is not null").fetchall()}
    assert len(health) >= 6
    for got in (from_mf, view):
        assert set(got) == set(health)
        for key, (n, average) in health.items():
            assert got[key][0] == n and abs(got[key][1] - average) <= TOLERANCE, key
