"""CRM history: CSM touchpoints, support cases and NPS answers, vectorised over service stints.

Each table is sorted by the time it happened and numbered in that order, so a snapshot as of a
run date is a prefix with a few as-of columns (case status, closed_at, csat) recomputed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from pipelines.lab.generate import catalog
from pipelines.lab.generate.accounts import CORE_ARR, STRATEGIC_ARR, TECH_TOUCH_ARR, Accounts
from pipelines.lab.generate.billing import Lifecycle
from pipelines.lab.generate.timeline import NO_END, SECONDS_PER_DAY, Window, numbered

_QBR, _CHECK_IN, _EMAIL, _CALL, _TRAINING, _ESCALATION = range(6)
#: Touchpoints per year by tier (strategic, core, scale, tech-touch) and activity type.
_ACTIVITY_RATES = np.array(
    [
        # qbr (scheduled separately), check_in, email, call, training, escalation
        [0.0, 20.0, 26.0, 10.0, 2.0, 0.5],
        [0.0, 10.0, 14.0, 4.0, 1.0, 0.3],
        [0.0, 1.5, 6.0, 1.0, 0.5, 0.15],
        [0.0, 0.0, 3.0, 0.2, 0.3, 0.03],
    ]
)
_CASES_PER_YEAR = np.array([10.0, 5.0, 2.0, 0.6])
_SOLVED_TO_CLOSED_DAYS = 4


def _tiers(arr_usd: np.ndarray) -> np.ndarray:
    return np.select(
        [arr_usd >= STRATEGIC_ARR, arr_usd >= CORE_ARR, arr_usd >= TECH_TOUCH_ARR], [0, 1, 2], default=3
    )


def _business_seconds(rng: np.random.Generator, acc: Accounts, acct: np.ndarray) -> np.ndarray:
    """Seconds into the UTC day around the account's local business hours."""
    peak = catalog.country_arrays()["peak_hour"][acc.country[acct]] - 3.0
    secs = (peak * 3600 + rng.normal(0, 2.5 * 3600, len(acct))) % SECONDS_PER_DAY
    return secs.astype(np.int64)


@dataclass
class _Spans:
    """Service stints clipped to the simulated history."""

    acct: np.ndarray
    start: np.ndarray
    end: np.ndarray  # exclusive, clipped to the day after the last run date
    churn: np.ndarray  # day the stint ended (NO_END when still active)
    tier: np.ndarray

    @classmethod
    def of(cls, life: Lifecycle, window: Window) -> _Spans:
        s = life.stints
        start = np.maximum(s.start, window.history_start)
        end = np.minimum(s.end, window.last + 1)
        keep = end > start
        return cls(s.acct[keep], start[keep], end[keep], s.end[keep], _tiers(s.arr_usd[keep]))

    def poisson(self, rng: np.random.Generator, per_year: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Uniform random days at ``per_year`` per stint: (stint index, day)."""
        length = self.end - self.start
        counts = rng.poisson(per_year * length / 365)
        idx = np.repeat(np.arange(len(length)), counts)
        day = self.start[idx] + np.floor(rng.random(len(idx)) * length[idx]).astype(np.int64)
        return idx, day

    def before_churn(self, rng: np.random.Generator, mean: float, days: int) -> tuple[np.ndarray, np.ndarray]:
        """Random days in the ``days`` before each churn that falls inside the stint."""
        churned = (self.churn != NO_END) & (self.churn <= self.end)
        lo = np.maximum(self.start, self.churn - days)
        counts = np.where(churned & (lo < self.churn), rng.poisson(mean, len(self.acct)), 0)
        idx = np.repeat(np.arange(len(counts)), counts)
        day = lo[idx] + np.floor(rng.random(len(idx)) * (self.churn[idx] - lo[idx])).astype(np.int64)
        return idx, day


@dataclass
class Activities:
    acct: np.ndarray
    kind: np.ndarray
    at: np.ndarray  # seconds
    responded: np.ndarray


def simulate_activities(acc: Accounts, life: Lifecycle, window: Window, seed: int) -> Activities:
    rng = np.random.default_rng([seed, 4])
    sp = _Spans.of(life, window)
    has_csm = ~np.asarray(acc.csm.is_null())[sp.acct]
    parts_idx, parts_day, parts_kind = [], [], []
    for kind in (_CHECK_IN, _EMAIL, _CALL, _ESCALATION):
        rate = _ACTIVITY_RATES[sp.tier, kind] * np.where(has_csm | (kind == _EMAIL), 1.0, 0.3)
        rate = rate * (1 + 2 * acc.risk[sp.acct] * (kind == _ESCALATION))
        idx, day = sp.poisson(rng, rate)
        parts_idx.append(idx)
        parts_day.append(day)
        parts_kind.append(np.full(len(idx), kind))
    # training: mostly during onboarding (first 90 days of a stint)
    idx, day = sp.poisson(rng, _ACTIVITY_RATES[sp.tier, _TRAINING])
    onboarding = rng.random(len(idx)) < 0.6
    day = np.where(onboarding, sp.start[idx] + np.floor(rng.random(len(idx)) * 90).astype(np.int64), day)
    ok = day < sp.end[idx]
    parts_idx.append(idx[ok])
    parts_day.append(day[ok])
    parts_kind.append(np.full(int(ok.sum()), _TRAINING))
    # escalations pile up before churn
    idx, day = sp.before_churn(rng, 1.2, 90)
    parts_idx.append(idx)
    parts_day.append(day)
    parts_kind.append(np.full(len(idx), _ESCALATION))
    # QBRs: quarterly for strategic accounts with a CSM, twice a year for core ones
    period = np.where(sp.tier == 0, 91, np.where(sp.tier == 1, 182, 0)) * has_csm
    length = sp.end - sp.start
    phase = np.floor(rng.random(len(length)) * 60).astype(np.int64) + 30
    counts = np.where(period > 0, np.maximum(0, (length - phase) // np.maximum(period, 1) + 1), 0)
    counts = np.where(length > phase, counts, 0)
    idx = np.repeat(np.arange(len(counts)), counts)
    k = np.arange(len(idx)) - np.repeat(np.cumsum(counts) - counts, counts)
    day = sp.start[idx] + phase[idx] + k * period[idx] + rng.integers(-7, 8, len(idx))
    ok = (day >= sp.start[idx]) & (day < sp.end[idx])
    parts_idx.append(idx[ok])
    parts_day.append(day[ok])
    parts_kind.append(np.full(int(ok.sum()), _QBR))

    idx = np.concatenate(parts_idx)
    day = np.concatenate(parts_day)
    kind = np.concatenate(parts_kind)
    acct = sp.acct[idx]
    at = day * SECONDS_PER_DAY + _business_seconds(rng, acc, acct)
    churn = sp.churn[idx]
    fading = (churn != NO_END) & (day >= churn - 60)
    p = acc.responsiveness[acct] * np.where(fading, 0.45, 1.0)
    p = np.clip(p + np.select([kind == _QBR, kind == _EMAIL], [0.2, -0.15], 0.0), 0.02, 0.98)
    responded = rng.random(len(p)) < p
    order = np.lexsort((kind, acct, at))
    return Activities(acct[order], kind[order], at[order], responded[order])


class ActivitySnapshots:
    def __init__(self, acc: Accounts, act: Activities):
        self.a = act
        self.ids = numbered("act_", np.arange(1, len(act.at) + 1), 8)
        self.account_ids = acc.ids.take(pa.array(act.acct))
        self.types = pa.array(catalog.ACTIVITY_TYPES).take(pa.array(act.kind))

    def as_of(self, day: int) -> pa.Table:
        k = int(np.searchsorted(self.a.at, (day + 1) * SECONDS_PER_DAY, side="left"))
        return pa.table(
            {
                "activity_id": self.ids[:k],
                "account_id": self.account_ids[:k],
                "activity_type": self.types[:k],
                "occurred_at": pa.array(self.a.at[:k], pa.timestamp("s")),
                "is_customer_responded": pa.array(self.a.responded[:k]),
            }
        )


@dataclass
class Cases:
    acct: np.ndarray
    opened: np.ndarray  # seconds
    closed: np.ndarray  # seconds, NO_END when never resolved
    pending_from: np.ndarray  # seconds, NO_END when never pending
    priority: np.ndarray
    csat: np.ndarray  # 0 = no answer
    csat_at: np.ndarray  # seconds the csat answer arrives


def simulate_cases(acc: Accounts, life: Lifecycle, window: Window, seed: int, *, noise: bool = False) -> Cases:
    """Support cases; cases pile up and turn urgent before churn. With ``noise`` (the
    generator's ``noise_components`` knob) they carry no churn signal: the same rate for every
    account (no risk term), no pile-up, the normal priority mix."""
    rng = np.random.default_rng([seed, 5])
    sp = _Spans.of(life, window)
    lines = np.bincount(life.periods.acct, weights=None, minlength=acc.n)  # periods ~ complexity
    complexity = 1 + 0.15 * np.log1p(lines[sp.acct])
    risk_factor = np.full(len(sp.acct), 1.2) if noise else (0.6 + 1.2 * acc.risk[sp.acct])
    rate = _CASES_PER_YEAR[sp.tier] * risk_factor * complexity
    idx, day = sp.poisson(rng, rate)
    idx2, day2 = sp.before_churn(rng, 1.5, 90)
    if noise:
        idx2, day2 = idx2[:0], day2[:0]
    near = np.concatenate([np.zeros(len(idx), bool), np.ones(len(idx2), bool)])
    idx, day = np.concatenate([idx, idx2]), np.concatenate([day, day2])
    churn = sp.churn[idx]
    if not noise:
        near |= (churn != NO_END) & (day >= churn - 90)
    n = len(idx)
    acct = sp.acct[idx]
    opened = day * SECONDS_PER_DAY + _business_seconds(rng, acc, acct)
    u = rng.random(n)
    normal_mix = np.searchsorted(np.cumsum([0.05, 0.15, 0.55, 0.25]), u, side="right")
    risky_mix = np.searchsorted(np.cumsum([0.25, 0.35, 0.30, 0.10]), u, side="right")
    priority = np.minimum(np.where(near, risky_mix, normal_mix), 3)
    median_hours = np.array([4.0, 20.0, 40.0, 90.0])[priority]
    resolve = (median_hours * 3600 * np.exp(rng.normal(0, 1.0, n))).astype(np.int64) + 600
    unresolved = rng.random(n) < 0.02
    closed = np.where(unresolved, NO_END, opened + resolve)
    pending = (rng.random(n) < 0.35) & (resolve > 7200)
    pending_from = np.where(pending, opened + 3600, NO_END)
    answers = rng.random(n) < 0.45
    mu = 4.4 - 1.8 * acc.risk[acct] - 1.2 * near - 0.5 * (priority == 0)
    csat = np.where(answers & ~unresolved, np.clip(np.round(mu + rng.normal(0, 0.8, n)), 1, 5), 0).astype(np.int64)
    csat_at = closed + np.where(csat > 0, rng.integers(3600, 3 * SECONDS_PER_DAY, n), 0)
    order = np.lexsort((acct, opened))
    return Cases(acct[order], opened[order], closed[order], pending_from[order], priority[order],
                 csat[order], csat_at[order])


class CaseSnapshots:
    def __init__(self, acc: Accounts, cases: Cases):
        self.c = cases
        self.ids = numbered("case_", np.arange(1, len(cases.opened) + 1), 8)
        self.account_ids = acc.ids.take(pa.array(cases.acct))
        self.priority = pa.array(catalog.PRIORITIES).take(pa.array(cases.priority))

    def as_of(self, day: int) -> pa.Table:
        c = self.c
        cutoff = (day + 1) * SECONDS_PER_DAY  # everything before the end of the run date
        k = int(np.searchsorted(c.opened, cutoff, side="left"))
        closed = c.closed[:k] < cutoff
        status = np.where(
            closed,
            np.where(c.closed[:k] + _SOLVED_TO_CLOSED_DAYS * SECONDS_PER_DAY < cutoff, 3, 2),
            np.where(c.pending_from[:k] < cutoff, 1, 0),
        )
        has_csat = closed & (c.csat[:k] > 0) & (c.csat_at[:k] < cutoff)
        return pa.table(
            {
                "case_id": self.ids[:k],
                "account_id": self.account_ids[:k],
                "opened_at": pa.array(c.opened[:k], pa.timestamp("s")),
                "closed_at": pa.array(np.where(closed, c.closed[:k], 0), pa.timestamp("s"), mask=~closed),
                "priority": self.priority[:k],
                "status": pa.array(catalog.CASE_STATUSES).take(pa.array(status)),
                "csat": pa.array(c.csat[:k], pa.int64(), mask=~has_csat),
            }
        )


@dataclass
class Nps:
    acct: np.ndarray
    at: np.ndarray
    score: np.ndarray


def simulate_nps(acc: Accounts, life: Lifecycle, window: Window, seed: int, *, noise: bool = False,
                 predictive: bool = False) -> Nps:
    """Twice-yearly surveys per stint; scores fall before churn. With ``noise`` (the generator's
    ``noise_components`` knob) scores carry no churn signal (no risk or pre-churn term); with
    ``predictive`` (``predictive_components``) surveys are monthly, nearly everyone answers and
    scores drop sharply in the 120 days before churn (a strong, known signal)."""
    rng = np.random.default_rng([seed, 6])
    sp = _Spans.of(life, window)
    length = sp.end - sp.start
    period = 30 if predictive else 182
    phase = 60 + np.floor(rng.random(len(length)) * (30 if predictive else 180)).astype(np.int64)
    counts = np.where(length > phase, (length - phase) // period + 1, 0)
    idx = np.repeat(np.arange(len(counts)), counts)
    k = np.arange(len(idx)) - np.repeat(np.cumsum(counts) - counts, counts)
    day = sp.start[idx] + phase[idx] + period * k
    acct = sp.acct[idx]
    respond = rng.random(len(idx)) < (0.95 if predictive else 0.2 + 0.4 * acc.responsiveness[acct])
    idx, day, acct = idx[respond], day[respond], acct[respond]
    day = np.minimum(day + rng.integers(0, 8, len(idx)), sp.end[idx] - 1)
    churn = sp.churn[idx]
    near = (churn != NO_END) & (day >= churn - 120)
    if noise:
        mu = np.full(len(idx), 7.5) + 0.8 * acc.is_reference[acct]
    elif predictive:
        mu = 8.5 - 6.0 * near
    else:
        mu = 8.8 - 4.5 * acc.risk[acct] - 3.0 * near + 0.8 * acc.is_reference[acct]
    score = np.clip(np.round(mu + rng.normal(0, 1.6, len(idx))), 0, 10).astype(np.int64)
    at = day * SECONDS_PER_DAY + _business_seconds(rng, acc, acct)
    order = np.lexsort((acct, at))
    return Nps(acct[order], at[order], score[order])


class NpsSnapshots:
    def __init__(self, acc: Accounts, nps: Nps):
        self.s = nps
        self.ids = numbered("nps_", np.arange(1, len(nps.at) + 1), 8)
        self.account_ids = acc.ids.take(pa.array(nps.acct))

    def as_of(self, day: int) -> pa.Table:
        k = int(np.searchsorted(self.s.at, (day + 1) * SECONDS_PER_DAY, side="left"))
        return pa.table(
            {
                "response_id": self.ids[:k],
                "account_id": self.account_ids[:k],
                "responded_at": pa.array(self.s.at[:k], pa.timestamp("s")),
                "score": pa.array(self.s.score[:k], pa.int64()),
            }
        )
