"""The published MRR equals an independent recomputation from the extract (pipelines/lab/oracle.py:
the night's ``billing/subscriptions.csv`` as delivered and the FX table, no dbt code). The soak
runs the same oracle after every night (pipelines/lab/soak.py)."""

from __future__ import annotations

import csv
from decimal import Decimal

from pipelines.lab.oracle import CENT, MrrConfig, reconcile_published_mrr
from pipelines.release import open_published


def test_published_mrr_equals_an_independent_recomputation_from_the_extract(real_nights) -> None:
    settings, as_of = real_nights.settings, real_nights.last
    con = open_published(settings)
    try:
        check = reconcile_published_mrr(con, settings.drop_dir(as_of) / "billing" / "subscriptions.csv",
                                        MrrConfig.of(settings), as_of)
    finally:
        con.close()
    assert len(check.expected) > 100 and len(check.published) > 100
    assert check.missing == [], f"account-months with MRR in the extract but not published: {check.missing[:5]}"
    assert check.wrong == [], f"{len(check.wrong)} account-months differ from the extract, e.g. {check.wrong[:5]}"
    # MRR is the subscribed MRR except while suspended for non-payment (then 0)
    assert check.wrong_suspension == [], check.wrong_suspension[:5]
    assert check.ok
    assert abs(check.expected_total - check.published_total) <= CENT * len(check.published)
    assert check.expected_total > Decimal(0)


def test_the_oracle_sees_annual_and_quarterly_plans(real_nights) -> None:
    """The reconciliation above means something only if the extract has every interval."""
    trials = MrrConfig.of(real_nights.settings).trial_plans
    with (real_nights.settings.drop_dir(real_nights.last) / "billing" / "subscriptions.csv").open() as fh:
        intervals = {r["billing_interval"] for r in csv.DictReader(fh) if r["plan"] not in trials}
    assert intervals == {"month", "quarter", "year"}
