"""Which report periods are complete, and which were backcast.

The period marts carry two flags (``columns.PERIOD_FLAGS``): ``is_period_complete`` (false for
the period in progress, whose last day is after the as-of date: its figures move every night)
and ``is_backcast`` (the segment was derived from billing because the period starts before the
accounts' daily history). When a published mart does not have a flag yet, it is derived here
from the row's period start, the run date and the first date of the daily history, with the
same meaning, so the report reads the same either way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

IN_PROGRESS = "in progress"
BACKCAST = "backcast"


def add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def period_end(start: dt.date, months: int) -> dt.date:
    """The first day after the period (exclusive end)."""
    return add_months(start.replace(day=1), months)


def is_complete(start: dt.date, months: int, run_date: dt.date) -> bool:
    """True once the period's last day is on or before the as-of date (macro
    revenue_is_period_complete): on the night of a month's last day, that month is complete."""
    return period_end(start, months) - dt.timedelta(days=1) <= run_date


def flag_rows(
    rows: Iterable[dict[str, Any]],
    *,
    start_column: str,
    months: int,
    run_date: dt.date,
    history_start: dt.date | None,
) -> list[dict[str, Any]]:
    """Fill ``is_period_complete`` / ``is_backcast`` where the mart did not provide them.

    Fallbacks: complete = the period's last day is on or before the run date; backcast = the row's
    ``segment_source`` says so, else (cohorts, whose starting tier is backcast) a tier cut that
    starts before the daily history.
    """
    out = []
    for row in rows:
        row = dict(row)
        start = row[start_column]
        if row.get("is_period_complete") is None:
            row["is_period_complete"] = is_complete(start, months, run_date)
        if row.get("is_backcast") is None:
            if "segment_source" in row:
                row["is_backcast"] = row["segment_source"] == "backcast"
            else:
                cohort = row.get("cohort_month", start)
                row["is_backcast"] = bool(
                    history_start is not None and cohort < history_start and row.get("starting_tier") not in (None, "All")
                )
        out.append(row)
    return out


def period_marks(rows: Iterable[dict[str, Any]], label: Any) -> dict[str, str]:
    """x label -> "in progress" / "backcast" for the charts (in progress wins)."""
    marks: dict[str, str] = {}
    for row in rows:
        x = label(row)
        if not row["is_period_complete"]:
            marks[x] = IN_PROGRESS
        elif row["is_backcast"] and marks.get(x) != IN_PROGRESS:
            marks[x] = BACKCAST
    return marks


def mark_of(row: dict[str, Any]) -> str:
    if not row.get("is_period_complete", True):
        return IN_PROGRESS
    return BACKCAST if row.get("is_backcast") else ""
