"""Every revenue policy docs/revenue-definitions.md offers publishes: a night built with each
documented revenue-policy var switched away from its default passes dbt, the quality gate and
the publish, and the published ratios follow the switched policy.

Issue 17: with `revenue_nrr_includes_reactivation: true` no night could publish, because a
suite restated the default NRR formula. The ratios are now defined once
(dbt_project/macros/revenue_retention_ratios.sql) and re-checked in dbt with the same macros.
The night is the last night of a copy of the shared ``real_nights`` home, rebuilt from a copy of
the dbt project whose vars are switched (the way a customer sets them: dbt_project.yml).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from pipelines.build.dbt import run_results_path
from pipelines.build.dbt_results import RunResults
from pipelines.ops import nightly
from pipelines.release import open_published, read_manifest
from pipelines.settings import get_settings

ROOT = Path(__file__).resolve().parents[2]

#: Each documented revenue policy (docs/revenue-definitions.md, "Customers (logos) and
#: policies" and the comparison table) set to the alternative the docs offer.
POLICIES = {
    "revenue_nrr_includes_reactivation": "true",  # ChartMogul's cohort NRR
    "revenue_quick_ratio_includes_reactivation": "false",  # Baremetrics' quick ratio
    "revenue_count_trials_as_customers": "true",
    "revenue_count_zero_mrr_as_customers": "true",
    "revenue_past_due_grace_days": "null",  # ChartMogul's default: past due never suspends
    "revenue_uncollectible_grace_days": "null",
    "revenue_reactivation_window_months": "0",  # every gap is churn then reactivation, as the vendors count
    "revenue_trailing_window_months": "6",
    "revenue_ltv_apply_nrr": "false",
}


def _project_with(tmp_path: Path, values: dict[str, str]) -> Path:
    """A copy of the dbt project whose dbt_project.yml sets ``values`` (each var's line replaced)."""
    project = tmp_path / "dbt_project"
    shutil.copytree(ROOT / "dbt_project", project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    config = project / "dbt_project.yml"
    text = config.read_text()
    for var, value in values.items():
        text, n = re.subn(rf"^(  {var}:) [^#\n]*?([ \t]*(?:#.*)?)$", rf"\1 {value}\2", text, flags=re.M)
        assert n == 1, f"{var} is not a var of dbt_project.yml"
    config.write_text(text)
    return project


def test_every_documented_revenue_policy_publishes(real_home, tmp_path):
    docs = (ROOT / "docs" / "revenue-definitions.md").read_text()
    assert all(f"`{var}`" in docs for var in POLICIES), "a policy var here is not documented"
    settings = get_settings(home=real_home.settings.home, dbt_project_dir=_project_with(tmp_path, POLICIES))
    night = real_home.last
    before = read_manifest(settings)

    nightly.run_night(settings, night)  # raises on a failed build, gate or publish

    after = read_manifest(settings)
    assert after.run_date == night and after.release_id != before.release_id
    results = RunResults.load(run_results_path(settings, night))
    ratios = next(r for r in results.tests if r.name == "assert_revenue_segment_ratios_match_flows")
    assert ratios.status == "pass"
    with open_published(settings) as con:
        rows = con.execute("""
            select starting_mrr_reporting as s, expansion_mrr_reporting as e, reactivation_mrr_reporting as r,
                   contraction_mrr_reporting as c, churned_mrr_reporting as ch, new_mrr_reporting as n,
                   net_revenue_retention as nrr, quick_ratio as qr
            from marts.rpt_segment_retention_monthly
        """).fetchall()
        trials_counted = con.execute(
            "select count(*) from marts.fct_mrr_account_monthly where is_on_trial and is_active_customer"
        ).fetchone()[0]
    # the switched policies are what was published: NRR counts reactivated MRR, the quick ratio does not
    reactivated = [row for row in rows if row[0] > 0 and row[2] > 0]
    assert reactivated, "no period with reactivated MRR: the NRR policy was not exercised"
    for s, e, r, c, ch, n, nrr, qr in rows:
        if s > 0:
            assert float(nrr) == pytest.approx(float(s + e + r - c - ch) / float(s), abs=1e-6)
        if c + ch > 0:
            assert float(qr) == pytest.approx(float(n + e) / float(c + ch), abs=1e-6)
    assert trials_counted > 0, "no trial counted as a customer"
    assert after.checksums["rpt_segment_retention_monthly"] != before.checksums["rpt_segment_retention_monthly"]
