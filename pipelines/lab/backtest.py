"""``segment-mart backtest``: the health-score backtest over the extracts' past, scored by the same
dbt models as every night.

The nightly mart ``rpt_health_backtest`` scores the daily history, which needs
``backtest_horizon_days`` (90) of nights before its first row. To backtest now, this command scores
health (and tiers) at past as-of points, month ends by default, into a scratch DuckDB file (the
policy lab's ``duckdb_sandbox`` target: the working warehouse attached read-only, ``--defer
--state`` for every model not rebuilt), one ``dbt run`` per point in date order so the incremental
models build their history there, then builds ``rpt_health_backtest`` in the scratch file for the
run date and writes it under ``<home>/backtests/<run_date>/`` (``backtest.csv``, ``.parquet``,
``report.html``, ``summary.md``). The working warehouse and the publish are never written.

Known on that day: each point reads the drops delivered by then. A point before the first drop
the lake holds reads that first drop (var ``snapshot_date``) and staging keeps only what it can
date on or before the point: events, activities, NPS answers, cases and invoices dated after it are
dropped, a case closed after it is open, an invoice paid after it (or uncollectible, which carries
no date) is open. Account attributes (seats, employees, owner, strategic flags) and subscription
terms are the first drop's: that is the leak this cannot remove (docs/policy-lab.md).
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import DataProblem

if TYPE_CHECKING:
    from pipelines.settings import Settings

log = logging.getLogger(__name__)

#: What each backtest point builds: health, segments and tiers for that as-of date, with everything
#: upstream of them (staging views, usage, accounts).
POINT_SELECTION = ("+int_account_tiers_assigned",)


class BacktestRefused(DataProblem, RuntimeError):
    """Nothing to backtest (no night built, or no point with a full follow-up window)."""


@dataclass
class Backtest:
    run_date: dt.date
    points: list[dt.date]
    out_dir: Path
    rows: list[dict[str, Any]]


def month_end(day: dt.date) -> dt.date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def backtest_points(run_date: dt.date, horizon_days: int, points: int, every_months: int = 1) -> list[dt.date]:
    """Month ends, ``every_months`` apart, the latest with a full follow-up window before the run date."""
    last = run_date - dt.timedelta(days=horizon_days)
    day = month_end(last) if month_end(last) == last else month_end(last.replace(day=1) - dt.timedelta(days=1))
    out = []
    while len(out) < points:
        out.append(day)
        first = day.replace(day=1)
        for _ in range(every_months):
            first = (first - dt.timedelta(days=1)).replace(day=1)
        day = month_end(first)
    return sorted(out)


def _drop_dates(settings: Settings) -> list[dt.date]:
    folder = settings.lake / "raw" / "crm" / "accounts"
    return sorted(dt.date.fromisoformat(p.name.split("=", 1)[1]) for p in folder.glob("_run_date=*"))


def _dbt_run(settings: Settings, sandbox: Path, state_dir: Path, work: Path, variables: dict[str, Any],
             select: tuple[str, ...], what: str) -> None:
    from pipelines.build.dbt import DbtFailed, dbt_executable, failed_nodes, stream_dbt
    from pipelines.lab.policy_lab import SANDBOX_TARGET, sandbox_env

    target = work / "dbt_target"
    args = [
        dbt_executable(), "run", "--no-use-colors",
        "--project-dir", str(settings.dbt_project_dir), "--profiles-dir", str(settings.dbt_project_dir),
        "--target", SANDBOX_TARGET, "--target-path", str(target), "--log-path", str(work / "dbt_logs"),
        "--vars", json.dumps(variables, default=str), "--select", *select, "--defer", "--state", str(state_dir),
    ]
    code, tail = stream_dbt(args, settings.dbt_project_dir, sandbox_env(settings, sandbox))
    if code != 0:
        produced = target / "run_results.json"
        failing = failed_nodes(produced) if produced.exists() else []
        listing = "\n".join(f"  - {f}" for f in failing) or "\n".join(f"  | {t}" for t in tail)
        raise DbtFailed(f"backtest: {what} failed (exit {code}):\n{listing}")


def backtest(settings: Settings, run_date: dt.date, *, points: int = 12, every_months: int = 1,
             horizon_days: int | None = None, progress=log.info) -> Backtest:
    """Score health at ``points`` past month ends and backtest it against the outcomes known on
    ``run_date`` (the working warehouse's latest night); writes ``<home>/backtests/<run_date>/``."""

    from pipelines import warehouse
    from pipelines.build.dbt import target_dir
    from pipelines.lab.policy_lab import SimulationRefused, check_latest_night, dbt_var
    from pipelines.ops import run_lock
    from pipelines.report.policy_report import write_backtest_report

    horizon = int(horizon_days if horizon_days is not None else dbt_var(settings, "backtest_horizon_days"))
    dates = backtest_points(run_date, horizon, points, every_months)
    out_dir = settings.home / "backtests" / run_date.isoformat()
    work = settings.temp / "policy_lab" / f"backtest-{run_date.isoformat()}"
    with run_lock.exclusive(settings.home, run_date, "backtest"):
        try:
            check_latest_night(settings, run_date, "segment-mart backtest --run-date {latest}")
        except SimulationRefused as exc:
            raise BacktestRefused(str(exc)) from exc
        manifest = target_dir(settings) / "manifest.json"
        if not manifest.exists():
            raise BacktestRefused(f"no dbt manifest at {manifest}: build the night first")
        drops = _drop_dates(settings)
        if not drops:
            raise BacktestRefused(f"no drop in the raw lake {settings.lake}: ingest a night first")
        if work.exists():
            shutil.rmtree(work)
        (work / "state").mkdir(parents=True)
        shutil.copyfile(manifest, work / "state" / "manifest.json")
        sandbox = work / "sandbox.duckdb"
        for i, point in enumerate(dates, 1):
            variables: dict[str, Any] = {"as_of_date": point.isoformat()}
            if not any(d <= point for d in drops):
                variables["snapshot_date"] = drops[0].isoformat()
            progress(f"backtest point {i} of {len(dates)}: health as of {point}"
                     + (f" (from the drop of {drops[0]}, dated rows up to {point})" if "snapshot_date" in variables
                        else ""))
            _dbt_run(settings, sandbox, work / "state", work, variables, POINT_SELECTION, f"scoring {point}")
        progress(f"backtest: outcomes within {horizon} days, known on {run_date}")
        _dbt_run(settings, sandbox, work / "state", work,
                 {"as_of_date": run_date.isoformat(), "backtest_horizon_days": horizon, "backtest_points": "monthly"},
                 # the points kept month by month are built here too, from the scored history
                 ("int_account_health_backtest_points", "rpt_health_backtest"), "the backtest mart")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        out_dir.mkdir(parents=True)
        with warehouse.connect(sandbox, read_only=True) as con:
            query = "select * from marts.rpt_health_backtest order by analysis, sort_key, group_value"
            cur = con.execute(query)
            names = [d[0] for d in cur.description]
            rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
            for fmt, options in (("csv", "format csv, header"), ("parquet", "format parquet")):
                path = str(out_dir / f"backtest.{fmt}").replace("'", "''")
                con.execute(f"copy ({query}) to '{path}' ({options})")
        shutil.rmtree(work, ignore_errors=True)
    result = Backtest(run_date, dates, out_dir, rows)
    write_backtest_report(result)
    return result
