"""An independent oracle for MRR: recomputed from the raw extract rows (the night's
``billing/subscriptions.csv`` as delivered) and the FX rate table, sharing no code with dbt,
and reconciled with the published ``fct_mrr_account_monthly``.

The billing reconciliation inside dbt (data-tests/assert_revenue_account_mrr_matches_billing)
reuses the staging models' interval mapping, so it agrees with a bug planted there (annual
plans divided by 1 instead of 12: 12x revenue). This module reads only the customer's
configuration (the vars naming the trial plans, the currencies and the FX table) and restates
the contract's MRR formula on its own: amount x seats when per seat / months in the interval,
at the rate valid on the start date (the currency's pivot rate over the reporting currency's),
on each month's reference date (its last day, or the as-of date for the month in progress),
end dates exclusive, trials left out unless configured as customers.

Used by the end-to-end test (tests/e2e/test_mrr_oracle.py) and after every night of the soak
(pipelines/lab/soak.py). CSV extracts only (what the generator writes by default).
"""

from __future__ import annotations

import calendar
import csv
import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from pipelines.settings import Settings

MONTHS = {"month": 1, "quarter": 3, "year": 12}
CENT = Decimal("0.01")

Key = tuple[str, dt.date]  # (account_id, month_start_date)


@dataclass(frozen=True)
class MrrConfig:
    """The configuration the oracle reads (dbt vars and the FX table named by them)."""

    fx_rates_csv: Path
    pivot_currency: str
    reporting_currency: str
    trial_plans: frozenset[str]
    trials_are_customers: bool

    @classmethod
    def of(cls, settings: Settings) -> MrrConfig:
        import yaml

        project = yaml.safe_load((settings.dbt_project_dir / "dbt_project.yml").read_text(encoding="utf-8"))
        var = project["vars"]
        fx = settings.dbt_project_dir / "seeds" / f"{var['revenue_fx_rates_model']}.csv"
        if not fx.exists():
            raise FileNotFoundError(f"the MRR oracle reads the FX table as a seed CSV; {fx} does not exist "
                                    f"(var revenue_fx_rates_model = {var['revenue_fx_rates_model']!r})")
        return cls(fx, str(var["revenue_fx_pivot_currency"]).upper(), str(var["reporting_currency"]).upper(),
                   frozenset(str(p).lower() for p in var["revenue_trial_plans"]),
                   bool(var["revenue_count_trials_as_customers"]))


def _month_end(month: dt.date) -> dt.date:
    return month.replace(day=calendar.monthrange(month.year, month.month)[1])


class _Rates:
    def __init__(self, fx_csv: Path, pivot: str):
        with fx_csv.open(newline="") as fh:
            rows = [r for r in csv.DictReader(fh) if r["quote_currency"].strip().upper() == pivot]
        self.pivot = pivot
        self.by_currency: dict[str, list[tuple[dt.date, Decimal]]] = defaultdict(list)
        for r in rows:
            self.by_currency[r["currency_code"].strip().upper()].append(
                (dt.date.fromisoformat(r["valid_from"]), Decimal(r["rate"])))
        for rates in self.by_currency.values():
            rates.sort()

    def to_pivot(self, currency: str, on: dt.date) -> Decimal:
        if currency == self.pivot:
            return Decimal(1)
        valid = [rate for since, rate in self.by_currency.get(currency, []) if since <= on]
        if not valid:
            raise KeyError(f"no {currency}/{self.pivot} rate valid on {on}")
        return valid[-1]


def oracle_mrr(subscriptions_csv: Path, config: MrrConfig, as_of: dt.date) -> dict[Key, Decimal]:
    """MRR per (account, month) from the raw extract: the subscriptions active on each month's
    reference date, summed and rounded to the cent once per account and month."""
    rates = _Rates(config.fx_rates_csv, config.pivot_currency)
    with subscriptions_csv.open(newline="", encoding="utf-8") as fh:
        subs = [r for r in csv.DictReader(fh)
                if config.trials_are_customers or r["plan"].strip().lower() not in config.trial_plans]
    if not subs:
        return {}
    starts = [dt.date.fromisoformat(r["start_date"].strip()) for r in subs]
    month = min(starts).replace(day=1)
    months = []
    while month <= as_of:
        months.append(month)
        month = (month + dt.timedelta(days=32)).replace(day=1)
    totals: dict[Key, Decimal] = defaultdict(Decimal)
    for row, start in zip(subs, starts, strict=True):
        end = dt.date.fromisoformat(row["end_date"].strip()) if row["end_date"].strip() else None
        per_seat = row.get("is_per_seat", "").strip().lower() == "true"
        currency = row["currency"].strip().upper()
        fx = rates.to_pivot(currency, start) / rates.to_pivot(config.reporting_currency, start)
        mrr = (Decimal(row["amount"]) * (int(row["seats"]) if per_seat else 1) * fx
               / MONTHS[row["billing_interval"].strip().lower()])
        for month in months:
            reference = min(_month_end(month), as_of)
            if start <= reference and (end is None or end > reference):
                totals[(row["account_id"].strip(), month)] += mrr
    return {key: value.quantize(CENT, rounding=ROUND_HALF_UP) for key, value in totals.items()}


@dataclass
class MrrReconciliation:
    """The oracle against the published ``fct_mrr_account_monthly``; ``ok`` when they agree."""

    expected: dict[Key, Decimal]
    published: dict[Key, tuple[Decimal, Decimal, bool]]  # subscribed MRR, MRR, suspended
    missing: list[Key] = field(default_factory=list)  # MRR in the extract, no published row
    wrong: list[tuple[Key, Decimal, Decimal]] = field(default_factory=list)  # (key, oracle, published)
    wrong_suspension: list[tuple[Key, Decimal, Decimal, bool]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.wrong or self.wrong_suspension)

    @property
    def expected_total(self) -> Decimal:
        return sum(self.expected.values(), Decimal(0))

    @property
    def published_total(self) -> Decimal:
        return sum((subscribed for subscribed, _mrr, _s in self.published.values()), Decimal(0))

    def offending_rows(self, limit: int = 10) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        rows += [{"problem": "missing from fct_mrr_account_monthly", "account_id": a, "month_start_date": str(m),
                  "oracle_mrr": str(self.expected[(a, m)])} for a, m in self.missing]
        rows += [{"problem": "subscribed MRR differs from the extract", "account_id": a, "month_start_date": str(m),
                  "oracle_mrr": str(o), "published_subscribed_mrr": str(p)} for (a, m), o, p in self.wrong]
        rows += [{"problem": "MRR is neither the subscribed MRR nor 0 while suspended", "account_id": a,
                  "month_start_date": str(m), "subscribed_mrr": str(s), "mrr": str(p), "is_past_due_suspended": x}
                 for (a, m), s, p, x in self.wrong_suspension]
        return rows[:limit]

    def describe(self) -> str:
        if self.ok:
            return f"{len(self.published)} account-months agree with the extract"
        return (f"{len(self.missing)} account-months missing, {len(self.wrong)} with another MRR, "
                f"{len(self.wrong_suspension)} with a wrong suspension; e.g. {self.offending_rows(3)}")


def reconcile_published_mrr(con: Any, subscriptions_csv: Path, config: MrrConfig,
                            as_of: dt.date) -> MrrReconciliation:
    """Recompute MRR from the extract and compare it with ``marts.fct_mrr_account_monthly`` on
    ``con`` (a DuckDB connection to the published file): every account-month with MRR is
    published with that subscribed MRR (to the cent), and MRR is the subscribed MRR except
    while suspended for non-payment (then 0)."""
    expected = oracle_mrr(subscriptions_csv, config, as_of)
    rows = con.execute("""
        select account_id, month_start_date, subscribed_mrr_reporting, mrr_reporting, is_past_due_suspended
        from marts.fct_mrr_account_monthly
    """).fetchall()
    published = {(a, m): (subscribed, mrr, bool(suspended)) for a, m, subscribed, mrr, suspended in rows}
    result = MrrReconciliation(expected, published)
    result.missing = sorted(key for key, value in expected.items() if value > 0 and key not in published)
    result.wrong = sorted((key, expected.get(key, Decimal(0)), subscribed)
                          for key, (subscribed, _mrr, _s) in published.items()
                          if abs(expected.get(key, Decimal(0)) - subscribed) > CENT)
    result.wrong_suspension = sorted((key, subscribed, mrr, suspended)
                                     for key, (subscribed, mrr, suspended) in published.items()
                                     if mrr != (Decimal(0) if suspended else subscribed))
    return result
