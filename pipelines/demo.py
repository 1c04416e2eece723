"""`make demo`: generate a demo business and run the nightly DAG through Airflow for its last nights.

Writes everything under the pipeline home (``SEGMENT_MART_HOME``, default ``var/``):

1. synthetic extracts for 300 accounts over ~15 months, with nightly drops for the last 4 days
   (``<home>/landing``; regenerated only when missing or generated with other parameters);
2. a project-local Airflow (``<home>/airflow``: SQLite metadata DB, LocalExecutor, the
   one-slot ``segment_mart_warehouse`` pool);
3. ``airflow dags test segment_mart_nightly <date>`` for each drop date, in order;

then prints where the published DuckDB file, Parquet files, manifest, HTML report and quality
report are, and how to start the Airflow UI. Running it again re-runs the same nights (each
night replaces its own rows, so the published marts come out the same).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import time
from pathlib import Path

from pipelines.airflow_home import airflow_home, dags_test, prepare
from pipelines.settings import get_settings

ACCOUNTS = 300
START_DATE = dt.date(2025, 1, 1)
DAYS = 456  # ~15 months: 2025-01-01 .. 2026-03-31
DROP_DAYS = 4
SEED = 42
STAMP = "demo-generated.json"


def _generate(landing: Path, accounts: int, days: int, drop_days: int) -> list[dt.date]:
    from pipelines.generate import generate

    params = {"accounts": accounts, "start_date": START_DATE.isoformat(), "days": days,
              "drop_days": drop_days, "seed": SEED}
    stamp = landing / STAMP
    if stamp.exists() and json.loads(stamp.read_text()).get("params") == params:
        dates = [dt.date.fromisoformat(d) for d in json.loads(stamp.read_text())["run_dates"]]
        if all((landing / d.isoformat()).is_dir() for d in dates):
            print(f"Demo extracts already in {landing} ({dates[0]} .. {dates[-1]})", flush=True)
            return dates
    if landing.exists():
        shutil.rmtree(landing)
    print(f"Generating {accounts} accounts over {days} days, drops for the last {drop_days} ...", flush=True)
    summary = generate(landing, accounts=accounts, start_date=START_DATE, days=days,
                       drop_days=drop_days, seed=SEED)
    dates = [dt.date.fromisoformat(str(d)) for d in summary.run_dates]
    stamp.write_text(json.dumps({"params": params, "run_dates": [d.isoformat() for d in dates]}, indent=2))
    return dates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=ACCOUNTS)
    parser.add_argument("--days", type=int, default=DAYS)
    parser.add_argument("--drop-days", type=int, default=DROP_DAYS)
    parser.add_argument("--quiet", action="store_true", help="only print a line per night, not Airflow's log")
    args = parser.parse_args(argv)

    started = time.monotonic()
    settings = get_settings()
    dates = _generate(settings.landing, args.accounts, args.days, args.drop_days)
    home = airflow_home(settings=settings)
    # The UI started later on this home shows the DAG with the demo's nights as its schedule.
    home.pin({"SEGMENT_MART_START_DATE": dates[0].isoformat(), "SEGMENT_MART_END_DATE": dates[-1].isoformat()})
    print(f"Preparing Airflow in {home.path} ...", flush=True)
    prepare(home)
    results = dags_test(home, dates, echo=not args.quiet)
    for r in results:
        print(f"  {r.run_date}: {'published' if r.ok else 'FAILED'} ({r.seconds:.0f}s)")
    if not all(r.ok for r in results) or len(results) < len(dates):
        failed = next(r for r in results if not r.ok)
        summary = settings.home / "runs" / f"{failed.run_date.isoformat()}.json"
        print(f"\nThe night {failed.run_date} failed; see {summary} and the log above.", file=sys.stderr)
        return 1

    published = settings.published
    quality = settings.quality / dates[-1].isoformat()
    manifest = json.loads((published / "manifest.json").read_text())
    print(f"""
Demo finished in {time.monotonic() - started:.0f}s: {len(dates)} nights ({dates[0]} .. {dates[-1]}) ran through Airflow.

  Published DuckDB file : {published / 'segment_mart.duckdb'}
  Parquet files         : {published / 'parquet'}/<mart>.parquet ({len(manifest.get('marts', {}))} marts)
  Manifest              : {published / 'manifest.json'}
  HTML report           : {published / 'report.html'}
  Quality report        : {quality / 'quality_report.html'} (JSON: {quality / 'quality_report.json'})
  Run summaries         : {settings.home / 'runs'}/<date>.json

Watch it in the Airflow UI:  make airflow-ui   (python -m pipelines.airflow_home standalone)
  then open http://localhost:8080 (no login) -> DAG segment_mart_nightly; the demo's runs are
  listed; trigger a date or clear a night there to re-run it.""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
