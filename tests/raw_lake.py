"""Reading the raw lake in tests: SQL over its tables as views ``raw.<table>`` (pipelines.intake.lake)."""

from __future__ import annotations

import duckdb

from pipelines.intake import lake
from pipelines.settings import Settings


def rows(settings: Settings, sql: str) -> list[tuple]:
    """Run SQL over the raw lake of ``settings``, its tables as views ``raw.<table>``."""
    con = duckdb.connect()
    try:
        lake.create_views(con, settings.lake)
        return con.execute(sql).fetchall()
    finally:
        con.close()
