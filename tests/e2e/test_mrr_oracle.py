"""An independent oracle for MRR: recomputed here from the raw extract rows (the night's
``billing/subscriptions.csv`` as delivered, and the FX seed), without the staging models,
and reconciled with the published ``fct_mrr_account_monthly``.

The billing reconciliation inside dbt (data-tests/assert_revenue_account_mrr_matches_billing)
reuses the staging models' interval mapping, so it agrees with a bug planted there (annual
plans divided by 1 instead of 12: 12x revenue). This test shares no code with dbt: the
contract's MRR formula (amount x seats when per seat / months in the interval, at the rate
valid on the start date), the month's reference date (its last day, or the as-of date for
the month in progress), end dates exclusive, trials left out (the default config).
"""

from __future__ import annotations

import calendar
import csv
import datetime as dt
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from pipelines.publish import open_published

PROJECT = Path(__file__).resolve().parents[2]
MONTHS = {"month": 1, "quarter": 3, "year": 12}
TRIAL_PLANS = {"trial"}
CENT = Decimal("0.01")


def _fx_to_usd(currency: str, on: dt.date, seed: list[dict[str, str]]) -> Decimal:
    if currency == "USD":
        return Decimal(1)
    rates = sorted((r for r in seed if r["currency_code"].upper() == currency and r["quote_currency"] == "USD"
                    and dt.date.fromisoformat(r["valid_from"]) <= on), key=lambda r: r["valid_from"])
    return Decimal(rates[-1]["rate"])


def _month_end(month: dt.date) -> dt.date:
    return month.replace(day=calendar.monthrange(month.year, month.month)[1])


def oracle_mrr(subscriptions_csv: Path, fx_seed_csv: Path, as_of: dt.date) -> dict[tuple[str, dt.date], Decimal]:
    """MRR per (account, month) from the raw extract: the subscriptions active on each month's
    reference date, summed and rounded to the cent once per account and month."""
    with fx_seed_csv.open(newline="") as fh:
        seed = list(csv.DictReader(fh))
    with subscriptions_csv.open(newline="", encoding="utf-8") as fh:
        subs = [r for r in csv.DictReader(fh) if r["plan"].strip().lower() not in TRIAL_PLANS]
    starts = [dt.date.fromisoformat(r["start_date"]) for r in subs]
    month = min(starts).replace(day=1)
    months = []
    while month <= as_of:
        months.append(month)
        month = (month + dt.timedelta(days=32)).replace(day=1)
    totals: dict[tuple[str, dt.date], Decimal] = defaultdict(Decimal)
    for row, start in zip(subs, starts, strict=True):
        end = dt.date.fromisoformat(row["end_date"]) if row["end_date"] else None
        per_seat = row.get("is_per_seat", "").strip().lower() == "true"
        mrr = (Decimal(row["amount"]) * (int(row["seats"]) if per_seat else 1)
               * _fx_to_usd(row["currency"].strip().upper(), start, seed) / MONTHS[row["billing_interval"].strip()])
        for month in months:
            reference = min(_month_end(month), as_of)
            if start <= reference and (end is None or end > reference):
                totals[(row["account_id"].strip(), month)] += mrr
    return {key: value.quantize(CENT, rounding=ROUND_HALF_UP) for key, value in totals.items()}


def test_published_mrr_equals_an_independent_recomputation_from_the_extract(real_nights) -> None:
    settings, as_of = real_nights.settings, real_nights.last
    expected = oracle_mrr(settings.drop_dir(as_of) / "billing" / "subscriptions.csv",
                          PROJECT / "dbt_project" / "seeds" / "fx_rates.csv", as_of)
    con = open_published(settings)
    try:
        published = con.execute("""
            select account_id, month_start_date, subscribed_mrr_reporting, mrr_reporting, is_past_due_suspended
            from marts.fct_mrr_account_monthly
        """).fetchall()
    finally:
        con.close()
    assert len(expected) > 100 and len(published) > 100
    rows = {(a, m): (subscribed, mrr, suspended) for a, m, subscribed, mrr, suspended in published}
    missing = sorted(key for key, value in expected.items() if value > 0 and key not in rows)
    assert missing == [], f"account-months with MRR in the extract but not published: {missing[:5]}"
    wrong = [(key, expected.get(key, Decimal(0)), subscribed)
             for key, (subscribed, _mrr, _suspended) in rows.items()
             if abs(expected.get(key, Decimal(0)) - subscribed) > CENT]
    assert wrong == [], f"{len(wrong)} account-months differ from the extract, e.g. {wrong[:5]}"
    # MRR is the subscribed MRR except while suspended for non-payment (then 0)
    wrong_mrr = [key for key, (subscribed, mrr, suspended) in rows.items()
                 if mrr != (Decimal(0) if suspended else subscribed)]
    assert wrong_mrr == [], wrong_mrr[:5]
    total = sum(expected.values())
    assert abs(total - sum(r[0] for r in rows.values())) <= CENT * len(rows)


def test_the_oracle_sees_annual_and_quarterly_plans(real_nights) -> None:
    """The reconciliation above means something only if the extract has every interval."""
    with (real_nights.settings.drop_dir(real_nights.last) / "billing" / "subscriptions.csv").open() as fh:
        intervals = {r["billing_interval"] for r in csv.DictReader(fh) if r["plan"] not in TRIAL_PLANS}
    assert intervals == {"month", "quarter", "year"}
