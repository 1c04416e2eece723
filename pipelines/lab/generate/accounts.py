"""Account roster: firmographics, latent size/risk/engagement traits, CRM flags.

Accounts are numbered in the order the CRM created them (``acc_000001`` is the oldest), so a
snapshot as of a run date is a prefix of the roster.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from pipelines.lab.generate import catalog
from pipelines.lab.generate.timeline import HISTORY_DAYS, Window, numbered

PAID, TRIAL_FIRST, FREE_FIRST = 0, 1, 2
#: USD ARR thresholds of the tiers (DOMAIN.md defaults).
STRATEGIC_ARR, CORE_ARR, TECH_TOUCH_ARR = 100_000.0, 25_000.0, 5_000.0


@dataclass
class Accounts:
    """Column arrays, one element per account, in created order."""

    ids: pa.Array  # account_id strings
    names: pa.Array
    industry: np.ndarray  # index into catalog.INDUSTRIES
    employees: np.ndarray
    country: np.ndarray  # index into catalog.COUNTRIES
    created: np.ndarray  # int day
    csm: pa.Array  # csm_owner_id strings (null when unassigned)
    is_marquee: np.ndarray
    is_reference: np.ndarray
    is_partner: np.ndarray
    parent: np.ndarray  # index of the parent account, -1 when none
    # latent traits used by the simulation (never written)
    kind: np.ndarray  # PAID / TRIAL_FIRST / FREE_FIRST
    first_start: np.ndarray  # int day of the first subscription
    arr_usd: np.ndarray  # ARR the first paid subscription aims at
    currency: np.ndarray  # index into catalog.CURRENCIES
    risk: np.ndarray  # 0..1 churn propensity
    responsiveness: np.ndarray  # 0..1 chance of answering CSM outreach
    utilisation: np.ndarray  # share of seats with active users
    intensity: np.ndarray  # relative events per active user

    @property
    def n(self) -> int:
        return len(self.created)


def _mixture_beta(rng: np.random.Generator, n: int, parts: list[tuple[float, float, float]]) -> np.ndarray:
    """Draw from a mixture of Beta distributions given as (weight, a, b)."""
    weights = np.array([p[0] for p in parts])
    which = rng.choice(len(parts), size=n, p=weights / weights.sum())
    out = np.empty(n)
    for k, (_, a, b) in enumerate(parts):
        sel = which == k
        out[sel] = rng.beta(a, b, size=int(sel.sum()))
    return out


def simulate_accounts(rng: np.random.Generator, n: int, window: Window) -> Accounts:
    """Draw ``n`` accounts: all created by the last run date, some during the window."""
    countries = catalog.country_arrays()
    industries = catalog.industry_arrays()

    size = rng.standard_normal(n)
    country = rng.choice(len(countries["code"]), size=n, p=countries["weight"]).astype(np.int16)
    industry = rng.choice(len(industries["name"]), size=n, p=industries["weight"]).astype(np.int16)
    kind = rng.choice(3, size=n, p=[0.70, 0.22, 0.08]).astype(np.int8)

    log_emp = np.log(150) + 1.35 * size + 0.55 * rng.standard_normal(n) + industries["emp_adj"][industry]
    employees = np.clip(np.round(np.exp(log_emp)), 2, 400_000).astype(np.int64)
    log_arr = (
        np.log(24_000)
        + 1.15 * size
        + 0.5 * rng.standard_normal(n)
        + industries["arr_adj"][industry]
        + countries["arr_adj"][country]
        - 0.5 * (kind == TRIAL_FIRST)
    )
    arr_usd = np.clip(np.exp(log_arr), 600.0, 8_000_000.0)
    # licences rarely exceed headcount: ~1 seat per $1K ARR, 1.2-4 employees per seat
    employees = np.maximum(employees, np.round(arr_usd / 1_000 * (1.2 + 2.8 * rng.random(n)))).astype(np.int64)

    # New logos are created during the window; the rest over the history before it.
    new_share = min(0.4, 0.22 * window.days / 365)
    is_new = rng.random(n) < new_share
    lag = np.floor(rng.exponential(25, n)).astype(np.int64)  # sales cycle: created -> first start
    created = np.where(
        is_new,
        window.first + np.floor(rng.random(n) * window.days).astype(np.int64),
        0,
    )
    first_start_old = window.first - 1 - np.floor(HISTORY_DAYS * rng.random(n) ** 1.3).astype(np.int64)
    created = np.where(is_new, created, first_start_old - lag)
    first_start = np.where(is_new, created + lag, first_start_old)

    risk = np.clip(rng.beta(2.0, 5.0, n) + 0.08 * (size < -0.5), 0, 1)
    responsiveness = _mixture_beta(rng, n, [(0.2, 1.5, 6.0), (0.5, 5.0, 3.0), (0.3, 9.0, 1.5)])
    utilisation = _mixture_beta(rng, n, [(0.2, 2.0, 9.0), (0.62, 6.0, 4.0), (0.18, 25.0, 1.0)])
    intensity = np.exp(0.35 * rng.standard_normal(n)) * (1.25 - 0.7 * risk)

    # Sort into CRM creation order; the account number follows it.
    order = np.lexsort((np.arange(n), created))
    size, country, industry, kind = size[order], country[order], industry[order], kind[order]
    employees, arr_usd, created, first_start = employees[order], arr_usd[order], created[order], first_start[order]
    risk, responsiveness = risk[order], responsiveness[order]
    utilisation, intensity = utilisation[order], intensity[order]

    ids = numbered("acc_", np.arange(1, n + 1), 6)
    codes = countries["code"][country]
    first = rng.integers(0, len(catalog.NAME_FIRST), n)
    second = rng.integers(0, len(catalog.NAME_SECOND), n)
    names = pa.array(
        [
            f"{catalog.NAME_FIRST[a]} {catalog.NAME_SECOND[b]} {catalog.NAME_SUFFIX[c]}"
            for a, b, c in zip(first.tolist(), second.tolist(), codes.tolist(), strict=True)
        ]
    )

    # CSM coverage: pooled books of ~20 strategic or ~60 core accounts per CSM.
    paid_like = kind != FREE_FIRST
    strategic = paid_like & (arr_usd >= STRATEGIC_ARR)
    core = paid_like & (arr_usd >= CORE_ARR) & ~strategic
    n_strategic_csm = max(1, int(np.ceil(strategic.sum() / 20)))
    n_core_csm = max(1, int(np.ceil(core.sum() / 60)))
    csm_index = np.where(
        strategic,
        rng.integers(0, n_strategic_csm, n),
        n_strategic_csm + rng.integers(0, n_core_csm, n),
    )
    csm = pa.array(
        [f"csm_{c + 1:03d}" if s else None for c, s in zip(csm_index.tolist(), (strategic | core).tolist(), strict=True)],
        pa.string(),
    )

    fast_moving = np.isin(industries["name"][industry], ["Software", "Technology", "Startup", "Agency"])
    is_marquee = rng.random(n) < 0.015 + 0.10 * strategic + 0.03 * (fast_moving & (arr_usd < CORE_ARR))
    is_reference = rng.random(n) < (0.03 + 0.12 * (strategic | core)) * (1.3 - risk)
    is_partner = rng.random(n) < 0.02 + 0.05 * fast_moving

    # Subsidiaries: ~5% of accounts belong to an earlier, large account.
    parent = np.full(n, -1, dtype=np.int64)
    big = np.flatnonzero(employees >= np.quantile(employees, 0.75))
    child = np.flatnonzero(rng.random(n) < 0.05)
    before = np.searchsorted(big, child)  # large accounts created before the child
    pick = np.floor(rng.random(len(child)) * before).astype(np.int64)
    ok = before > 0
    parent[child[ok]] = big[pick[ok]]

    return Accounts(
        ids=ids,
        names=names,
        industry=industry,
        employees=employees,
        country=country,
        created=created,
        csm=csm,
        is_marquee=is_marquee,
        is_reference=is_reference,
        is_partner=is_partner,
        parent=parent,
        kind=kind,
        first_start=first_start,
        arr_usd=arr_usd,
        currency=countries["currency"][country],
        risk=risk,
        responsiveness=responsiveness,
        utilisation=utilisation,
        intensity=intensity,
    )


def accounts_as_of(acc: Accounts, day: int) -> pa.Table:
    """The crm/accounts snapshot on ``day``: every account created by then."""
    k = int(np.searchsorted(acc.created, day, side="right"))
    industries = pa.array([i[0] for i in catalog.INDUSTRIES])
    countries = pa.array([c[0] for c in catalog.COUNTRIES])
    parent = acc.parent[:k]
    parent_ids = acc.ids.take(pa.array(np.where(parent >= 0, parent, 0), mask=parent < 0))
    return pa.table(
        {
            "account_id": acc.ids[:k],
            "account_name": acc.names[:k],
            "industry": industries.take(acc.industry[:k]),
            "employee_count": pa.array(acc.employees[:k], pa.int64()),
            "country": countries.take(acc.country[:k]),
            "created_date": pa.array(acc.created[:k].astype(np.int32), pa.date32()),
            "csm_owner_id": acc.csm[:k],
            "is_marquee_logo": pa.array(acc.is_marquee[:k]),
            "is_reference": pa.array(acc.is_reference[:k]),
            "is_partner": pa.array(acc.is_partner[:k]),
            "parent_account_id": parent_ids,
        }
    )
