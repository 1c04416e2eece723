"""Changing and auditing the working warehouse of a real pipeline home in tests (``real_home``)."""

from __future__ import annotations

import datetime as dt

import duckdb

from pipelines.build.dbt import run_results_path
from pipelines.quality import run_quality_gate
from pipelines.settings import Settings
from tests.conftest import RealNights


def sql(settings: Settings, statement: str, params=None) -> None:
    """Run one statement on the working warehouse (read-write), e.g. to corrupt a partition."""
    con = duckdb.connect(str(settings.warehouse))
    try:
        con.execute(statement, params)
    finally:
        con.close()


def gate(home: RealNights, run_date: dt.date | None = None, **kwargs):
    """The quality gate of ``run_date`` (default: the home's last night) with that night's dbt results."""
    run_date = run_date or home.last
    return run_quality_gate(home.settings, run_date, dbt_run_results=run_results_path(home.settings, run_date),
                            **kwargs)
