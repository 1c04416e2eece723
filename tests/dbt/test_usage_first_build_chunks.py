"""A first build aggregates the usage history in chunks of days (bounded memory, issue 11):
the chunks must give exactly the rows one statement over the whole history gives.

On a private copy of the ``real_nights`` warehouse (400 days of usage of 40 accounts), with
the real dbt and DuckDB: ``int_usage_account_days_aggregated`` is rebuilt from nothing
(``--full-refresh``) once in 7-day chunks (58 chunks) and once in a single chunk longer
than the history, and the two tables must hold the same rows.
"""

from __future__ import annotations

import json

import duckdb

from pipelines.build.dbt import run_dbt
from tests.conftest import RealNights

MODEL = "int_usage_account_days_aggregated"


def _rebuild(real_home: RealNights, chunk_days: int) -> list[tuple]:
    settings = real_home.settings
    # the later --vars replaces run_dbt's own, so it repeats the as-of date
    run_dbt(settings, real_home.last, "run", "--select", MODEL, "--full-refresh",
            "--vars", json.dumps({"as_of_date": real_home.last.isoformat(), "usage_first_build_chunk_days": chunk_days}))
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        return con.execute(f"select * from intermediate.{MODEL} order by all").fetchall()


def test_chunked_first_build_equals_one_statement_over_the_whole_history(real_home: RealNights) -> None:
    chunked = _rebuild(real_home, 7)
    whole = _rebuild(real_home, 100_000)
    assert len(chunked) > 1_000, "the fixture should have a long usage history"
    assert chunked == whole
