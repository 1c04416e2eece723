"""Read access to the published marts: only the columns named in ``columns.COLUMNS``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipelines.errors import DataProblem
from pipelines.report.columns import COLUMNS, PERIOD_FLAGS, PERIOD_MARTS, SCHEMA, TIERS_MART

if TYPE_CHECKING:
    import duckdb


class NoData(DataProblem):
    """A section cannot be drawn; the message says which mart / column is missing."""


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def table(mart: str) -> str:
    return f"{SCHEMA}.{quote(mart)}"


@dataclass(frozen=True)
class Tier:
    """A tier as the project configures it (seed tier_targets, published in ``TIERS_MART``)."""

    number: int
    name: str
    color: str | None


class Marts:
    """The published file's marts, checked against what the report reads."""

    def __init__(self, con: duckdb.DuckDBPyConnection, run_date: dt.date) -> None:
        self.con = con
        self.run_date = run_date
        self.columns: dict[str, list[str]] = {}
        for mart, column in con.execute(
            "select table_name, column_name from duckdb_columns() where schema_name = ? "
            "order by table_name, column_index", [SCHEMA],
        ).fetchall():
            self.columns.setdefault(mart, []).append(column)
        self._history_start: dt.date | None = None
        self._tiers: list[Tier] | None = None

    @property
    def names(self) -> list[str]:
        return sorted(self.columns)

    def missing(self) -> dict[str, list[str]]:
        """Mart -> columns the report reads that the file lacks (every mart it reads)."""
        out = {}
        for mart, wanted in COLUMNS.items():
            have = set(self.columns.get(mart, ()))
            gone = [c for c in wanted if c not in have]
            if gone:
                out[mart] = gone
        return out

    def cols(self, mart: str) -> list[str]:
        """The columns of ``mart`` the report reads (plus the period flags the mart has)."""
        if mart not in self.columns:
            raise NoData(f"mart {SCHEMA}.{mart} is not in the published file")
        gone = [c for c in COLUMNS[mart] if c not in self.columns[mart]]
        if gone:
            raise NoData(f"{SCHEMA}.{mart} lacks the column(s) {', '.join(gone)}")
        flags = [f for f in PERIOD_FLAGS if mart in PERIOD_MARTS and f in self.columns[mart]]
        return [*COLUMNS[mart], *flags]

    def rows(self, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        cur = self.con.execute(sql, list(params) if params else [])
        names = [d[0] for d in cur.description or []]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def select(self, mart: str, where: str = "true", order: str = "1", params: Sequence[Any] | None = None,
               alias: str = "") -> list[dict[str, Any]]:
        cols = ", ".join(quote(c) for c in self.cols(mart))
        return self.rows(f"select {cols} from {table(mart)} {alias} where {where} order by {order}", params)

    def count(self, mart: str) -> int:
        return int(self.con.execute(f"select count(*) from {table(mart)}").fetchall()[0][0])

    def latest(self, mart: str, column: str = "as_of_date") -> dt.date | None:
        self.cols(mart)
        return self.con.execute(f"select max({quote(column)}) from {table(mart)}").fetchall()[0][0]

    @property
    def tiers(self) -> list[Tier]:
        """The configured tiers in tier-number order, read from the published copy of seed
        tier_targets (``TIERS_MART`` on its latest as-of date); empty when the file lacks it."""
        if self._tiers is None:
            try:
                self.cols(TIERS_MART)
                rows = self.rows(f"select distinct tier_number, tier_name, tier_color from {table(TIERS_MART)} "
                                 f"where as_of_date = (select max(as_of_date) from {table(TIERS_MART)}) "
                                 "order by tier_number")
            except NoData:
                rows = []
            self._tiers = [Tier(int(r["tier_number"]), str(r["tier_name"]), r["tier_color"] or None) for r in rows]
        return self._tiers

    @property
    def tier_names(self) -> list[str]:
        return [t.name for t in self.tiers]

    @property
    def tier_colors(self) -> dict[str, str]:
        """Series colours of the tiers (charts fall back to the palette for anything else)."""
        return {t.name: t.color for t in self.tiers if t.color}

    def tier_key(self, name: Any) -> tuple[int, str]:
        """Sort key: the configured tiers by number, then any other value by name."""
        names = self.tier_names
        s = str(name)
        return (names.index(s) if s in names else len(names), s)

    @property
    def history_start(self) -> dt.date | None:
        """First date of the accounts' daily history (earlier periods are backcast)."""
        if self._history_start is None and "fct_account_tiers_daily" in self.columns:
            self._history_start = self.con.execute(
                f"select min(as_of_date) from {table('fct_account_tiers_daily')}").fetchall()[0][0]
        return self._history_start
