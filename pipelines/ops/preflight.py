"""Checks that stop a night at once, before minutes of work, with the command that fixes it.

* ``require_raw_data``: is the night's raw data there? (``build`` before ``ingest`` used to run
  dbt for a minute and a half and end in 15 "schema raw does not exist" errors.)
* ``check_night_order``: is this night after every night the warehouse already holds? (An
  out-of-order night used to build, then fail the quality gate with 9 ``as_of_date`` failures.)

``raw_sources_missing`` reads the raw lake's load audit (pipelines/intake/lake.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from pipelines.contract import SOURCES
from pipelines.errors import DataProblem
from pipelines.settings import Settings

#: The daily mart whose as-of dates are the nights the warehouse holds.
NIGHTS_TABLE = ("marts", "fct_account_tiers_daily")


class NightNotReady(DataProblem, RuntimeError):
    """A step was asked to run before the step it needs (e.g. build before ingest)."""


class NightOutOfOrder(DataProblem, RuntimeError):
    """The warehouse already holds a later night: re-running this one alone is refused."""


def raw_sources_missing(settings: Settings, run_date: dt.date, sources: Iterable[str] = SOURCES) -> list[str]:
    """The sources with no successful load for ``run_date`` in the raw lake (empty: all there)."""
    from pipelines import warehouse
    from pipelines.intake import lake

    wanted = list(sources)
    if not lake.has_audit(settings.lake):
        return wanted
    con = warehouse.in_memory(settings)
    try:
        loaded = {row[0] for row in con.execute(
            f"select distinct source from {lake.audit_relation_sql(settings.lake)} "
            "where run_date = ? and status in ('loaded', 'off')", [run_date],  # off: not in use
        ).fetchall()}
    finally:
        con.close()
    return [s for s in wanted if s not in loaded]


def require_raw_data(settings: Settings, run_date: dt.date) -> None:
    from pipelines.intake.lake import outdated_partitions

    missing = raw_sources_missing(settings, run_date)
    outdated = [] if missing else outdated_partitions(settings.lake, run_date, list(settings.entities_in_use_list))
    if outdated:
        day = run_date.isoformat()
        raise NightNotReady(
            f"The raw lake's partitions of {', '.join(e.qualified for e in outdated)} for {day} were written by an "
            f"older version of the loader (no column _carried_forward_from, which dbt reads). Ingest the night "
            f"again:\n    segment-mart ingest --run-date {day}\nor run every step of it:  segment-mart run --run-date {day}"
        )
    if missing:
        day = run_date.isoformat()
        raise NightNotReady(
            f"No raw data for {day}: {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not ingested "
            f"(raw lake {settings.lake}). Ingest the night first:\n"
            f"    segment-mart ingest --run-date {day}\n"
            f"or run every step of it:  segment-mart run --run-date {day}"
        )


def latest_night(settings: Settings) -> dt.date | None:
    """The latest night the warehouse's daily marts hold (None before the first build). On Spark:
    the newest ``as_of_date=`` partition folder of that mart's Parquet (nothing is read)."""
    from pipelines.warehouse import connect, table_exists

    if settings.engine == "spark":
        from pipelines.build.spark_marts import latest_partition

        latest = latest_partition(settings, *NIGHTS_TABLE, "as_of_date")
        return dt.date.fromisoformat(latest) if latest else None
    if not settings.warehouse.exists():
        return None
    with connect(settings.warehouse, read_only=True) as con:
        if not table_exists(con, *NIGHTS_TABLE):
            return None
        return con.execute(f"select max(as_of_date) from {'.'.join(NIGHTS_TABLE)}").fetchall()[0][0]


def check_night_order(settings: Settings, run_date: dt.date, *, replaying: bool = False) -> dt.date | None:
    """Refuse a night older than the latest one held, unless it is part of a replay from it.

    Returns the latest night held. A night re-run alone would publish an older state than the
    one published, and would not restate the later nights that read it (tier grace periods,
    health changes): replay it and every later night, in order (docs/operations.md).
    """
    latest = latest_night(settings)
    if latest is not None and latest > run_date and not replaying:
        day = run_date.isoformat()
        raise NightOutOfOrder(
            f"The warehouse already holds nights up to {latest}, later than {day}: a night cannot be "
            f"re-run alone (it would publish an older state, and the later nights read it). To restate "
            f"{day}, replay from this night:\n"
            f"    segment-mart replay --from-date {day}\n"
            f"(runs {day} .. {latest} in order and publishes {latest}); in Airflow, clear {day} with "
            "'Future' so every later night runs again. See docs/operations.md, restating an older night."
        )
    return latest
