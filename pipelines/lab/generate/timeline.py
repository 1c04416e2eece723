"""Day arithmetic: dates are int days since 1970-01-01, timestamps int seconds (UTC)."""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
SECONDS_PER_DAY = 86_400
#: "No end" sentinel for end days (far beyond any simulated horizon).
NO_END = 2**31 - 1
#: How far back the business history reaches before the first simulated run date.
HISTORY_DAYS = 3 * 365


def to_day(d: dt.date) -> int:
    return d.toordinal() - _EPOCH_ORDINAL


def to_date(day: int) -> dt.date:
    return dt.date.fromordinal(int(day) + _EPOCH_ORDINAL)


def add_months(day: int, months: int) -> int:
    """The same day of month ``months`` later (clipped to the month's last day)."""
    d = to_date(day)
    m = d.month - 1 + months
    year, month = d.year + m // 12, m % 12 + 1
    last = calendar.monthrange(year, month)[1]
    return dt.date(year, month, min(d.day, last)).toordinal() - _EPOCH_ORDINAL


def add_months_array(days: np.ndarray, months: np.ndarray) -> np.ndarray:
    """Vectorised :func:`add_months` over int day arrays."""
    d = days.astype("datetime64[D]")
    month_start = d.astype("datetime64[M]")
    dom = (d - month_start.astype("datetime64[D]")).astype(np.int64)
    target = month_start + months.astype(np.int64)
    first = target.astype("datetime64[D]")
    length = ((target + 1).astype("datetime64[D]") - first).astype(np.int64)
    return (first + np.minimum(dom, length - 1)).astype(np.int64)


def weekday(days: np.ndarray | int) -> np.ndarray | int:
    """0 = Monday .. 6 = Sunday (1970-01-01 was a Thursday)."""
    return (np.asarray(days) + 3) % 7


@dataclass(frozen=True)
class Window:
    """The simulated run dates: ``first`` .. ``last`` (int days), history from ``history_start``."""

    first: int
    days: int

    @property
    def last(self) -> int:
        return self.first + self.days - 1

    @property
    def history_start(self) -> int:
        return self.first - HISTORY_DAYS

    def date(self, index: int) -> dt.date:
        return to_date(self.first + index)


def numbered(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """Ids like ``acc_000042`` from integers, built with Arrow compute (no Python loop)."""
    digits = pc.utf8_lpad(pc.cast(pa.array(np.asarray(numbers, dtype=np.int64)), pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, digits, "")
