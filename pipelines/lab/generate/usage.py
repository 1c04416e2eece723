"""Product-usage events, generated one day at a time with numpy (never a loop per event).

Per account and day the expected number of events is

    active users (seats x utilisation x onboarding ramp x churn decay x expansion growth)
    x events per active user (intensity x churn decay x expansion growth x weekday)

scaled so that the mean over accounts and days is ``events_per_account_day``. Usage decays over
the 60 days before a churn and grows over the 60 days before an expansion.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.lab.generate import catalog
from pipelines.lab.generate.accounts import Accounts
from pipelines.lab.generate.billing import CORE_LINE, Lifecycle
from pipelines.lab.generate.timeline import (
    NO_END,
    SECONDS_PER_DAY,
    Window,
    numbered,
    to_date,
    weekday,
)

EVENTS_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("account_id", pa.string()),
        ("user_id", pa.string()),
        ("event_name", pa.string()),
        ("feature", pa.string()),
        ("occurred_at", pa.timestamp("s")),
    ]
)
LATE_SHARE = 0.005  # events delivered 1-3 days late
DECAY_DAYS = 60
GROWTH_DAYS = 60
MAX_POOL_OVER_SEATS = 1.1  # a few accounts have more active users than seats


class UsageSimulator:
    """Day-by-day event generator; deterministic per (seed, day index)."""

    def __init__(self, acc: Accounts, life: Lifecycle, window: Window, seed: int, mean_events: float):
        self.acc, self.window, self.seed = acc, window, seed
        p = life.periods
        core = (p.line == CORE_LINE) & (p.end > window.first) & (p.start <= window.last)
        self._acct = p.acct[core]
        self._seats = p.seats[core]
        self._plan = p.plan[core]
        self._start_day = np.maximum(p.start[core], window.first) - window.first
        self._end_day = p.end[core] - window.first  # may be past the window
        self._start_order = np.argsort(self._start_day, kind="stable")
        self._end_order = np.argsort(self._end_day, kind="stable")
        first_core = np.full(acc.n, NO_END, dtype=np.int64)
        np.minimum.at(first_core, p.acct[p.line == CORE_LINE], p.start[p.line == CORE_LINE])
        self._first_start = first_core
        self._churn = life.churn_day
        self._expansions = life.expansions
        self._peak_seconds = catalog.country_arrays()["peak_hour"][acc.country] * 3600.0
        self._account_ids = acc.ids
        self._user_prefix = numbered("usr_", np.arange(1, acc.n + 1), 6)
        max_users = int(np.ceil((p.seats.max() if len(p) else 1) * MAX_POOL_OVER_SEATS)) + 1
        self._user_suffix = pc.utf8_lpad(pc.cast(pa.array(np.arange(1, max_users + 1)), pa.string()), 5, "0")
        self._event_names = pa.array(catalog.EVENT_NAMES)
        self._features = pa.array([*catalog.FEATURES, None], pa.string())
        self._scale = 1.0
        expected = sum(float(rates.sum()) for _, rates, _, _ in self._days())
        target = mean_events * acc.n * window.days
        self._scale = target / expected if expected > 0 else 0.0

    def _days(self) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
        """(day index, expected events, active-user pool, feature breadth) per account, each day."""
        n = self.acc.n
        seats = np.zeros(n, dtype=np.int64)
        plan = np.zeros(n, dtype=np.int64)
        s_days, e_days = self._start_day[self._start_order], self._end_day[self._end_order]
        base = np.array(catalog.PLAN_BASE_FEATURES)
        top = np.array(catalog.PLAN_MAX_FEATURES)
        for i in range(self.window.days):
            ended = self._end_order[np.searchsorted(e_days, i, "left"):np.searchsorted(e_days, i, "right")]
            seats[self._acct[ended]] = 0
            started = self._start_order[np.searchsorted(s_days, i, "left"):np.searchsorted(s_days, i, "right")]
            seats[self._acct[started]] = self._seats[started]
            plan[self._acct[started]] = self._plan[started]
            day = self.window.first + i
            active = seats > 0
            tenure = np.maximum(0, day - self._first_start)
            ramp = 0.35 + 0.65 * np.minimum(1.0, tenure / 90)
            to_churn = self._churn - day
            x = np.where((to_churn > 0) & (to_churn <= DECAY_DAYS), to_churn / DECAY_DAYS, 1.0)
            ahead = self._expansions - day
            ahead = np.where(ahead > 0, ahead, NO_END).min(axis=1)
            y = np.where(ahead <= GROWTH_DAYS, 1 - ahead / GROWTH_DAYS, 0.0)
            pool = seats * self.acc.utilisation * ramp * (0.55 + 0.45 * x) * (1 + 0.25 * y)
            pool = np.clip(np.round(pool), 1, np.ceil(seats * MAX_POOL_OVER_SEATS)) * active
            per_user = self.acc.intensity * (0.25 + 0.75 * x) * (1 + 0.6 * y)
            week = 0.3 if weekday(day) >= 5 else 1.0
            rates = pool * per_user * week * self._scale
            breadth = np.minimum(base[plan] + tenure // 120, top[plan])
            yield i, rates, pool.astype(np.int64), np.maximum(breadth, 1)

    def days(self) -> Iterator[tuple[int, pa.Table, np.ndarray]]:
        """(day index, that day's events sorted by time, delivery lag in days per row)."""
        for i, rates, pool, breadth in self._days():
            yield i, *self._events(i, rates, pool, breadth)

    def _events(self, i: int, rates: np.ndarray, pool: np.ndarray, breadth: np.ndarray) -> tuple[pa.Table, np.ndarray]:
        rng = np.random.default_rng([self.seed, 7, i])
        counts = rng.poisson(rates)
        acct = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
        n = len(acct)
        user = np.floor(pool[acct] * rng.random(n) ** 1.25).astype(np.int64)
        feature = np.floor(breadth[acct] * rng.random(n) ** 1.6).astype(np.int64)
        login = rng.random(n) < 0.12
        name = np.where(login, catalog.LOGIN_EVENT, 2 * feature + (rng.random(n) < 0.3))
        feature = np.where(login, len(catalog.FEATURES), feature)
        secs = ((self._peak_seconds[acct] + rng.normal(0, 3.2 * 3600, n)) % SECONDS_PER_DAY).astype(np.int64)
        lag = np.where(rng.random(n) < LATE_SHARE, rng.integers(1, 4, n), 0)
        order = np.lexsort((acct, secs))
        acct, user, feature, name, secs, lag = (a[order] for a in (acct, user, feature, name, secs, lag))
        day = self.window.first + i
        prefix = f"evt_{to_date(day):%Y%m%d}_"
        seq = pc.utf8_lpad(pc.cast(pa.array(np.arange(n, dtype=np.int64)), pa.string()), 8, "0")
        acct_pa = pa.array(acct)
        table = pa.table(
            {
                "event_id": pc.binary_join_element_wise(prefix, seq, ""),
                "account_id": self._account_ids.take(acct_pa),
                "user_id": pc.binary_join_element_wise(
                    self._user_prefix.take(acct_pa), self._user_suffix.take(pa.array(user)), "_"
                ),
                "event_name": self._event_names.take(pa.array(name)),
                "feature": self._features.take(pa.array(feature)),
                "occurred_at": pa.array(day * SECONDS_PER_DAY + secs, pa.timestamp("s")),
            },
            schema=EVENTS_SCHEMA,
        )
        return table, lag
