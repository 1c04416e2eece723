"""Subscription lifecycles (trials, free plans, expansion, contraction, churn, reactivation)
and the invoices they produce.

One loop per account assembles its subscription periods from pre-drawn random numbers (a few
periods per account, never per event); invoices and every snapshot are vectorised.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.lab.generate import catalog
from pipelines.lab.generate.accounts import (
    CORE_ARR,
    FREE_FIRST,
    STRATEGIC_ARR,
    TECH_TOUCH_ARR,
    TRIAL_FIRST,
    Accounts,
)
from pipelines.lab.generate.catalog import ENTERPRISE, FREE, GROWTH, STARTER, TRIAL
from pipelines.lab.generate.timeline import NO_END, Window, add_months, add_months_array, numbered

CORE_LINE = 0
MAX_EXPANSIONS = 6  # expansion days kept per account for the usage model
_MONTH, _QUARTER, _YEAR = 0, 1, 2
_EXPAND, _CONTRACT, _DOWNGRADE, _UPGRADE, _RENEW = range(5)
_SCHEDULE_HORIZON = 100  # churns scheduled this many days past the last run date are known


@dataclass
class Periods:
    """One row per subscription period (a change of terms starts a new period)."""

    acct: np.ndarray
    seq: np.ndarray
    plan: np.ndarray
    line: np.ndarray
    start: np.ndarray
    end: np.ndarray  # exclusive; NO_END = open-ended
    end_known: np.ndarray  # first day the end date shows in a snapshot
    interval: np.ndarray
    amount_cents: np.ndarray  # per interval (per seat when per_seat), subscription currency
    currency: np.ndarray
    seats: np.ndarray
    per_seat: np.ndarray

    def __len__(self) -> int:
        return len(self.acct)


@dataclass
class Stints:
    """Continuous spells of service of an account (from first start to churn)."""

    acct: np.ndarray
    start: np.ndarray
    end: np.ndarray  # NO_END while active
    arr_usd: np.ndarray  # ARR at the start of the paid part (0 for free/trial only)


@dataclass
class Lifecycle:
    periods: Periods
    stints: Stints
    churn_day: np.ndarray  # per account: day all subscriptions ended (NO_END if never)
    expansions: np.ndarray  # per account x MAX_EXPANSIONS: days of expansions (NO_END padded)


class _Draws:
    """Sequential uniforms of one account: pre-drawn, topped up deterministically when used up."""

    __slots__ = ("_i", "_seed", "_top_ups", "_values")

    def __init__(self, values: list[float], seed: tuple[int, int]):
        self._values, self._i, self._seed, self._top_ups = values, 0, seed, 0

    def u(self) -> float:
        if self._i >= len(self._values):
            self._top_ups += 1
            extra = np.random.default_rng([*self._seed, self._top_ups]).random(64)
            self._values = self._values + extra.tolist()
        self._i += 1
        return self._values[self._i - 1]

    def exp(self, mean: float) -> float:
        return -math.log(1.0 - self.u()) * mean


def _next_boundary(anchor: int, months: int, day: int) -> int:
    """First billing boundary of a line anchored at ``anchor`` on or after ``day``."""
    k = max(1, int((day - anchor) / (30.44 * months)))
    b = add_months(anchor, k * months)
    while b < day:
        k += 1
        b = add_months(anchor, k * months)
    while k > 1 and add_months(anchor, (k - 1) * months) >= day:
        k -= 1
        b = add_months(anchor, k * months)
    return b


class _Builder:
    """Accumulates the periods of all accounts as column lists."""

    def __init__(self, window: Window):
        self.window = window
        self.rows: list[tuple[int, ...]] = []
        self.stints: list[tuple[int, int, int, float]] = []

    def period(self, acct: int, seq: int, plan: int, line: int, start: int, end: int, known: int,
               interval: int, cents: int, currency: int, seats: int, per_seat: bool) -> None:
        self.rows.append((acct, seq, plan, line, start, end, known, interval, cents, currency, seats,
                          int(per_seat)))


def _amount_cents(plan: int, seats: int, interval: int, per_seat: bool, discount: float,
                  currency: int) -> int:
    code = catalog.CURRENCIES[currency]
    usd = catalog.PRICE_PER_SEAT_YEAR_USD[plan] * (1 - discount) * catalog.INTERVAL_MONTHS[interval] / 12
    local = usd / catalog.FX_TO_USD[code] * (1 if per_seat else seats)
    if code in catalog.ZERO_DECIMAL_CURRENCIES:
        return round(local) * 100
    return round(local * 100)


def _plan_for(arr: float, jitter: float) -> int:
    if arr < 12_000 * jitter:
        return STARTER
    if arr < 90_000 * jitter:
        return GROWTH
    return ENTERPRISE


def _interval_for(arr: float, u: float) -> int:
    if arr < 10_000:
        probs = (0.70, 0.10)
    elif arr < STRATEGIC_ARR:
        probs = (0.25, 0.30)
    else:
        probs = (0.05, 0.25)
    if u < probs[0]:
        return _MONTH
    return _QUARTER if u < probs[0] + probs[1] else _YEAR


def _churn_hazard(arr: float, risk: float) -> float:
    """Annual churn probability-ish hazard by ARR band (DOMAIN.md churn tolerances)."""
    if arr < TECH_TOUCH_ARR:
        base = 0.30
    elif arr < CORE_ARR:
        base = 0.20
    elif arr < STRATEGIC_ARR:
        base = 0.12
    else:
        base = 0.06
    return base * (0.5 + 1.7 * risk)


class _AccountSim:
    """Simulates one account's subscriptions into a shared :class:`_Builder`."""

    def __init__(self, b: _Builder, acct: int, d: _Draws, currency: int, risk: float):
        self.b, self.acct, self.d, self.currency, self.risk = b, acct, d, currency, risk
        self.seq = 0
        self.expansions: list[int] = []

    def add(self, plan: int, line: int, start: int, end: int, known: int, interval: int,
            seats: int, per_seat: bool, discount: float) -> None:
        if start > self.b.window.last or self.seq >= 99:
            return
        self.seq += 1
        cents = 0 if plan in (FREE, TRIAL) else _amount_cents(plan, seats, interval, per_seat, discount,
                                                              self.currency)
        self.b.period(self.acct, self.seq, plan, line, start, end, min(known, end), interval, cents,
                      self.currency, seats, per_seat)

    def paid_stint(self, start: int, arr: float, can_churn: bool) -> int:
        """Paid subscriptions from ``start``; returns the churn day (NO_END if none)."""
        d, last = self.d, self.b.window.last
        plan = _plan_for(arr, math.exp(0.3 * (d.u() - 0.5)))
        interval = _interval_for(arr, d.u())
        months = catalog.INTERVAL_MONTHS[interval]
        per_seat = d.u() < (0.7, 0.5, 0.2)[plan - STARTER]
        discount = (0.0, 0.15, 0.3)[plan - STARTER] * d.u()
        churn = NO_END
        if can_churn:
            t = start + max(30, int(d.exp(365 / _churn_hazard(arr, self.risk))))
            if t <= last + _SCHEDULE_HORIZON:
                t = _next_boundary(start, months, t)
                churn = t if t <= last + _SCHEDULE_HORIZON else NO_END
        stop = min(churn, last + 1)
        notice = int(d.u() * (30, 60, 90)[interval]) + (0, 15, 30)[interval]

        lines = [(CORE_LINE, start)]
        for line in range(1, len(catalog.PRODUCT_LINES)):
            mid = catalog.LINE_ARR_MIDPOINT[line]
            p_own = 0.85 / (1 + math.exp(-(math.log(arr) - math.log(mid)) / 0.7))
            owns, later, delay = d.u() < p_own, d.u() < 0.5, d.u()
            if owns:
                line_start = start + (30 + int(delay * 500) if later else 0)
                if line_start < stop:
                    lines.append((line, line_start))
        weight_sum = sum(catalog.LINE_WEIGHT[line] for line, _ in lines)

        for line, line_start in lines:
            line_arr = arr * catalog.LINE_WEIGHT[line] / weight_sum
            price = catalog.PRICE_PER_SEAT_YEAR_USD[plan] * (1 - discount)
            seats = int(min(20_000, max(1, round(line_arr / price))))
            fixed_term = line == CORE_LINE and interval == _YEAR and plan == ENTERPRISE and d.u() < 0.6
            if line != CORE_LINE and line_start > start:
                self.expansions.append(line_start)  # cross-sell of a new product line
            # change points on the line's billing grid
            rate = 0.8 if line == CORE_LINE else 0.3
            changes: dict[int, int] = {}
            t = line_start + 60
            while True:
                t += int(d.exp(365 / rate))
                if t >= stop:
                    break
                kind_u = d.u()
                boundary = _next_boundary(line_start, months, t)
                if boundary >= stop:
                    break
                if line == CORE_LINE:
                    kind = (_EXPAND if kind_u < 0.5 else _CONTRACT if kind_u < 0.72
                            else _DOWNGRADE if kind_u < 0.82 else _UPGRADE)
                else:
                    kind = _EXPAND if kind_u < 0.6 else _CONTRACT
                changes.setdefault(boundary, kind)
            if fixed_term:
                k = 1
                while (b := add_months(line_start, 12 * k)) < min(stop, last + 1):
                    changes.setdefault(b, _RENEW)
                    k += 1
            cur_start, cur_plan, cur_seats = line_start, plan, seats
            for boundary in sorted(changes):
                kind = changes[boundary]
                new_plan, new_seats = cur_plan, cur_seats
                if kind == _UPGRADE and cur_plan == ENTERPRISE:
                    kind = _EXPAND
                if kind == _DOWNGRADE and (cur_plan == STARTER or line != CORE_LINE):
                    kind = _CONTRACT
                if kind == _CONTRACT and cur_seats < 2:
                    kind = _RENEW
                step = d.u()
                if kind == _EXPAND:
                    new_seats = min(20_000, max(cur_seats + 1, round(cur_seats * (1.15 + 0.65 * step))))
                elif kind == _CONTRACT:
                    new_seats = max(1, min(cur_seats - 1, round(cur_seats * (0.5 + 0.4 * step))))
                elif kind == _DOWNGRADE:
                    new_plan = cur_plan - 1
                elif kind == _UPGRADE:
                    new_plan = cur_plan + 1
                elif not fixed_term:
                    continue  # nothing changes
                if kind in (_EXPAND, _UPGRADE) and line == CORE_LINE:
                    self.expansions.append(boundary)
                known = cur_start if fixed_term else boundary
                self.add(cur_plan, line, cur_start, boundary, known, interval, cur_seats, per_seat, discount)
                cur_start, cur_plan, cur_seats = boundary, new_plan, new_seats
            if churn != NO_END:
                end = churn
                known = cur_start if fixed_term else max(cur_start, churn - notice)
            elif fixed_term:
                end = _next_boundary(line_start, 12, cur_start + 1)
                known = cur_start
            else:
                end, known = NO_END, NO_END
            self.add(cur_plan, line, cur_start, end, known, interval, cur_seats, per_seat, discount)
        return churn


#: Scripted tier moves at the end of the window, so that every generated data set shows the
#: migration rules at work (issue 12): (kind, ARR before, ARR after) in USD. Tier thresholds
#: of the defaults: Core from $25K, Scale below; the ARRs keep a wide margin around them.
TIER_MOVES: tuple[tuple[str, float, float], ...] = (
    ("upgrade", 15_000.0, 60_000.0),  # Scale -> Core on the last run date: upgraded at once
    ("held_downgrade", 60_000.0, 15_000.0),  # Core -> Scale on the last run date, renewal 60 days later: held
    ("downgrade_after_renewal", 60_000.0, 15_000.0),  # contracts 2 days before the last run date,
    # its term renews on the last run date: held for two nights, then downgraded
)
HELD_RENEWAL_DAYS = 60


def tier_move_accounts(acc: Accounts, window: Window) -> dict[int, int]:
    """Accounts (index -> index into TIER_MOVES) whose subscriptions are scripted: the first
    paid-first accounts that started at least 90 days before the last run date."""
    eligible = np.flatnonzero((acc.kind == 0) & (acc.first_start <= window.last - 90))
    return {int(a): k for k, a in enumerate(eligible[: len(TIER_MOVES)])}


def _script_tier_move(sim: _AccountSim, start: int, move: int, last: int) -> None:
    """Core-line subscriptions of one scripted account (monthly, flat amounts, no churn)."""
    kind, before, after = TIER_MOVES[move]
    growth = (STARTER if before < CORE_ARR else GROWTH, STARTER if after < CORE_ARR else GROWTH)

    def seats(arr: float, plan: int) -> int:
        return max(1, round(arr / catalog.PRICE_PER_SEAT_YEAR_USD[plan]))

    def add(plan: int, arr: float, begin: int, end: int, known: int) -> None:
        if begin > last:
            return  # starts after the simulated window (like _AccountSim.add)
        sim.seq += 1
        cents = _amount_cents(plan, seats(arr, plan), _MONTH, False, 0.0, sim.currency)
        sim.b.period(sim.acct, sim.seq, plan, CORE_LINE, begin, end, min(known, end), _MONTH, cents, sim.currency,
                     seats(arr, plan), False)

    if kind == "upgrade":
        add(growth[0], before, start, last, last)
        add(growth[1], after, last, NO_END, NO_END)
    elif kind == "held_downgrade":
        add(growth[0], before, start, last, last)
        add(growth[1], after, last, last + HELD_RENEWAL_DAYS, last)  # the contracted term, renewing later
        add(growth[1], after, last + HELD_RENEWAL_DAYS, NO_END, NO_END)
    else:  # downgrade_after_renewal
        add(growth[0], before, start, last - 2, last - 2)
        add(growth[1], after, last - 2, last, last - 2)  # the contracted term, renewing on the last run date
        add(growth[1], after, last, NO_END, NO_END)


def simulate_lifecycles(acc: Accounts, window: Window, seed: int) -> Lifecycle:
    """Subscription periods of every account up to the last run date (plus scheduled ends)."""
    n = acc.n
    rng = np.random.default_rng([seed, 2])
    uniforms = rng.random((n, 40))
    b = _Builder(window)
    last = window.last
    churn_day = np.full(n, NO_END, dtype=np.int64)
    expansions = np.full((n, MAX_EXPANSIONS), NO_END, dtype=np.int64)
    kinds, starts = acc.kind.tolist(), acc.first_start.tolist()
    arrs, currencies, risks = acc.arr_usd.tolist(), acc.currency.tolist(), acc.risk.tolist()
    scripted = tier_move_accounts(acc, window)

    for a in range(n):
        t = starts[a]
        if t > last:
            continue  # a prospect: created in the CRM, nothing bought yet
        d = _Draws(uniforms[a].tolist(), (seed, a))
        sim = _AccountSim(b, a, d, currencies[a], risks[a])
        if a in scripted:
            _script_tier_move(sim, t, scripted[a], last)
            b.stints.append((a, t, NO_END, TIER_MOVES[scripted[a]][2]))
            continue
        arr, stint_start = arrs[a], t
        if kinds[a] == TRIAL_FIRST:
            length = (14, 14, 21, 30)[int(d.u() * 4)]
            seats = 3 + int(d.u() * 18)
            sim.add(TRIAL, CORE_LINE, t, t + length, t, _MONTH, seats, False, 0.0)
            if d.u() >= 0.55:  # trial not converted
                b.stints.append((a, t, t + length, 0.0))
                continue
            t += length
        elif kinds[a] == FREE_FIRST:
            seats = 1 + int(d.u() * 5)
            upgrade_at = t + 30 + int(d.u() * 400)
            upgrades = d.u() < 0.2
            quits = t + 30 + int(d.exp(365 / 0.3))
            if not upgrades or upgrade_at >= quits or upgrade_at > last:
                end = quits if quits <= last else NO_END
                sim.add(FREE, CORE_LINE, t, end, end, _MONTH, seats, False, 0.0)
                b.stints.append((a, t, end, 0.0))
                churn_day[a] = end
                continue
            sim.add(FREE, CORE_LINE, t, upgrade_at, upgrade_at, _MONTH, seats, False, 0.0)
            t, arr = upgrade_at, min(arr, 9_000.0)
        if t > last:
            b.stints.append((a, stint_start, NO_END, arr))
            continue
        churn = sim.paid_stint(t, arr, can_churn=True)
        b.stints.append((a, stint_start, churn, arr))
        if churn != NO_END:
            churn_day[a] = churn
            back, gap, factor = d.u(), d.u(), d.u()
            react = churn + 45 + int(gap * 225)
            if back < 0.3 and react <= last:
                react_arr = arr * (0.4 + 0.6 * factor)
                sim.paid_stint(react, react_arr, can_churn=False)
                b.stints.append((a, react, NO_END, react_arr))
        exp_days = sorted(sim.expansions)[:MAX_EXPANSIONS]
        expansions[a, : len(exp_days)] = exp_days

    cols = list(zip(*b.rows, strict=True)) if b.rows else [()] * 12
    periods = Periods(
        acct=np.array(cols[0], dtype=np.int64),
        seq=np.array(cols[1], dtype=np.int64),
        plan=np.array(cols[2], dtype=np.int8),
        line=np.array(cols[3], dtype=np.int8),
        start=np.array(cols[4], dtype=np.int64),
        end=np.array(cols[5], dtype=np.int64),
        end_known=np.array(cols[6], dtype=np.int64),
        interval=np.array(cols[7], dtype=np.int8),
        amount_cents=np.array(cols[8], dtype=np.int64),
        currency=np.array(cols[9], dtype=np.int8),
        seats=np.array(cols[10], dtype=np.int64),
        per_seat=np.array(cols[11], dtype=bool),
    )
    # Snapshot order: by start date (a snapshot is then a prefix), ties by key.
    order = np.lexsort((periods.seq, periods.acct, periods.start))
    periods = Periods(**{k: v[order] for k, v in vars(periods).items()})
    st = list(zip(*b.stints, strict=True)) if b.stints else [()] * 4
    stints = Stints(
        acct=np.array(st[0], dtype=np.int64),
        start=np.array(st[1], dtype=np.int64),
        end=np.array(st[2], dtype=np.int64),
        arr_usd=np.array(st[3], dtype=np.float64),
    )
    return Lifecycle(periods=periods, stints=stints, churn_day=churn_day, expansions=expansions)


def mrr_usd(p: Periods) -> np.ndarray:
    """Monthly recurring revenue of each period in USD (the contract's MRR formula)."""
    fx = np.array([catalog.FX_TO_USD[c] for c in catalog.CURRENCIES])[p.currency]
    months = np.array(catalog.INTERVAL_MONTHS)[p.interval]
    return p.amount_cents / 100 * np.where(p.per_seat, p.seats, 1) / months * fx


def _decimal(cents: np.ndarray) -> pa.Array:
    """int64 cents -> decimal128(18, 2) without a float round trip."""
    cents = np.ascontiguousarray(cents, dtype=np.int64)
    words = np.empty((len(cents), 2), dtype=np.int64)
    words[:, 0] = cents
    words[:, 1] = cents >> 63  # sign extension to 128 bits
    return pa.Array.from_buffers(pa.decimal128(18, 2), len(cents), [None, pa.py_buffer(words.tobytes())])


def _dates(days: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    return pa.array(days.astype(np.int32), pa.date32(), mask=null)


_PLAN_NAMES = pa.array(catalog.PLANS)
_LINE_NAMES = pa.array(catalog.PRODUCT_LINES)
_INTERVAL_NAMES = pa.array(catalog.INTERVALS)
_CURRENCY_NAMES = pa.array(catalog.CURRENCIES)


class SubscriptionSnapshots:
    """billing/subscriptions as of any run date."""

    def __init__(self, acc: Accounts, periods: Periods):
        self.p = periods
        self.ids = pc.binary_join_element_wise(
            numbered("sub_", periods.acct + 1, 6), numbered("", periods.seq, 2), "_"
        )
        self.account_ids = acc.ids.take(pa.array(periods.acct))
        self.static = {
            "plan": _PLAN_NAMES.take(pa.array(periods.plan)),
            "product_line": _LINE_NAMES.take(pa.array(periods.line)),
            "billing_interval": _INTERVAL_NAMES.take(pa.array(periods.interval)),
            "currency": _CURRENCY_NAMES.take(pa.array(periods.currency)),
        }

    def as_of(self, day: int) -> pa.Table:
        p = self.p
        k = int(np.searchsorted(p.start, day, side="right"))
        hidden = p.end_known[:k] > day
        return pa.table(
            {
                "subscription_id": self.ids[:k],
                "account_id": self.account_ids[:k],
                "plan": self.static["plan"][:k],
                "product_line": self.static["product_line"][:k],
                "start_date": _dates(p.start[:k]),
                "end_date": _dates(np.where(hidden, 0, p.end[:k]), hidden),
                "billing_interval": self.static["billing_interval"][:k],
                "amount": _decimal(p.amount_cents[:k]),
                "currency": self.static["currency"][:k],
                "seats": pa.array(p.seats[:k], pa.int64()),
                "is_per_seat": pa.array(p.per_seat[:k]),
            }
        )


@dataclass
class Invoices:
    acct: np.ndarray
    issued: np.ndarray
    due: np.ndarray
    amount_cents: np.ndarray
    currency: np.ndarray
    paid: np.ndarray  # day paid, NO_END when never
    void: np.ndarray  # day voided, NO_END when never
    written_off: np.ndarray  # day marked uncollectible, NO_END when never


def simulate_invoices(acc: Accounts, life: Lifecycle, window: Window, seed: int) -> Invoices:
    """One invoice per billing interval of every paid period, issued in advance."""
    rng = np.random.default_rng([seed, 3])
    p = life.periods
    paid_periods = np.flatnonzero(p.amount_cents > 0)
    stop = np.minimum(p.end[paid_periods], window.last + 1)
    months = np.array(catalog.INTERVAL_MONTHS)[p.interval[paid_periods]]
    kmax = (stop - p.start[paid_periods]) // (28 * months) + 1
    idx = np.repeat(paid_periods, kmax)
    k = np.arange(len(idx)) - np.repeat(np.cumsum(kmax) - kmax, kmax)
    issued = add_months_array(p.start[idx], k * np.repeat(months, kmax))
    keep = issued < np.repeat(stop, kmax)
    idx, issued = idx[keep], issued[keep]
    order = np.lexsort((idx, issued))
    idx, issued = idx[order], issued[order]
    n = len(idx)

    acct = p.acct[idx]
    amount = p.amount_cents[idx] * np.where(p.per_seat[idx], p.seats[idx], 1)
    card = (p.plan[idx] == STARTER) & (p.interval[idx] == _MONTH)
    terms = np.where(card, 0, np.where(rng.random(n) < 0.3, 45, 30))
    due = issued + terms
    risk = acc.risk[acct]
    churn = life.churn_day[acct]
    near_churn = (issued >= churn - 120) & (issued < churn)
    late = np.maximum(0, np.round(rng.normal(-5 + 25 * risk, 9, n))).astype(np.int64)
    paid_day = np.where(card, issued + (rng.random(n) < 0.1) * rng.integers(1, 8, n), due + late - terms // 3)
    paid_day = np.maximum(paid_day, issued)

    u = rng.random(n)
    p_uncollectible = 0.004 + 0.02 * risk + 0.30 * near_churn
    is_void = u < 0.008
    is_bad = ~is_void & (u < 0.008 + p_uncollectible)
    never = ~is_void & ~is_bad & (u < 0.008 + p_uncollectible + 0.004)  # stays open past due
    paid = np.where(is_void | is_bad | never, NO_END, paid_day)
    void = np.where(is_void, issued + rng.integers(1, 10, n), NO_END)
    written_off = np.where(is_bad, due + rng.integers(60, 120, n), NO_END)
    return Invoices(
        acct=acct,
        issued=issued,
        due=due,
        amount_cents=amount,
        currency=p.currency[idx],
        paid=paid,
        void=void,
        written_off=written_off,
    )


class InvoiceSnapshots:
    """billing/invoices as of any run date (status and paid_date as known that day)."""

    def __init__(self, acc: Accounts, inv: Invoices):
        self.inv = inv
        self.ids = numbered("inv_", np.arange(1, len(inv.issued) + 1), 8)
        self.account_ids = acc.ids.take(pa.array(inv.acct))
        self.currency = _CURRENCY_NAMES.take(pa.array(inv.currency))

    def as_of(self, day: int) -> pa.Table:
        inv = self.inv
        k = int(np.searchsorted(inv.issued, day, side="right"))
        paid = inv.paid[:k] <= day
        status = np.where(paid, 0, np.where(inv.void[:k] <= day, 3, np.where(inv.written_off[:k] <= day, 2, 1)))
        return pa.table(
            {
                "invoice_id": self.ids[:k],
                "account_id": self.account_ids[:k],
                "issued_date": _dates(inv.issued[:k]),
                "due_date": _dates(inv.due[:k]),
                "amount": _decimal(inv.amount_cents[:k]),
                "currency": self.currency[:k],
                "status": pa.array(["paid", "open", "uncollectible", "void"]).take(pa.array(status)),
                "paid_date": _dates(np.where(paid, inv.paid[:k], 0), ~paid),
            }
        )
