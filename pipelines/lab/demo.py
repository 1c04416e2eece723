"""`make demo`: generate a demo business and run the nightly DAG through Airflow for its last nights.

Writes everything under the pipeline home (``SEGMENT_MART_HOME``, default ``var/``):

1. synthetic extracts for 300 accounts over ~15 months, with nightly drops for the last 4 days
   (``<home>/landing``; regenerated only when missing or generated with other parameters);
2. a project-local Airflow (``<home>/airflow``: SQLite metadata DB, LocalExecutor, the
   one-slot ``segment_mart_warehouse`` pool);
3. ``airflow dags test segment_mart_nightly <date>`` for each drop date, in order;

then prints where the published DuckDB file, Parquet files, manifest, HTML report and quality
report are, and how to start the Airflow UI. Running it again re-runs the same nights from
scratch (empty warehouse, previous demo publish removed; the published marts come out the same).

The terminal gets one line per night and step and our own warnings; Airflow's full output
goes to ``<home>/logs/make-demo.log`` (``--verbose`` prints it too). Each task's log is also
visible in the Airflow UI (``make airflow-ui``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import time
from pathlib import Path

from pipelines.ops.airflow_home import DagTestResult, airflow_home, dags_test, prepare
from pipelines.ops.dag_test_runs import TaskSection
from pipelines.settings import get_settings

ACCOUNTS = 300
START_DATE = dt.date(2025, 1, 1)
DAYS = 456  # ~15 months: 2025-01-01 .. 2026-03-31
DROP_DAYS = 4
SEED = 42
STAMP = "demo-generated.json"
LOG_NAME = "make-demo.log"
#: The night's steps printed one line each; the per-dbt-node status tasks are counted instead.
STEPS = ("check_extracts", "ingest_crm", "ingest_billing", "ingest_usage", "check_quarantine", "dbt_build",
         "quality_gate", "publish", "notify")


class Progress:
    """One line per night and step on the terminal."""

    def __init__(self, dates: list[dt.date]) -> None:
        self.index = {d: i for i, d in enumerate(dates, 1)}
        self.total = len(dates)
        self.started: dict[str, float] = {}
        self.nodes: dict[str, int] = {}

    def night(self, run_date: dt.date) -> str:
        return f"night {self.index[run_date]} of {self.total} ({run_date})"

    def step(self, run_date: dt.date, task_id: str, event: str, section: TaskSection) -> None:
        if event == "start":
            self.started[task_id] = time.monotonic()
            if task_id == STEPS[0]:
                self.nodes = {}
                print(f"{self.night(run_date)}", flush=True)
            return
        state = section.state or "done"
        if task_id in STEPS:
            took = time.monotonic() - self.started.get(task_id, time.monotonic())
            print(f"  {self.night(run_date)} {task_id:<17} {state:<8} {took:5.1f}s", flush=True)
        else:
            self.nodes[state] = self.nodes.get(state, 0) + 1

    def finish(self, result: DagTestResult) -> None:
        if self.nodes:
            counts = ", ".join(f"{n} {s}" for s, n in sorted(self.nodes.items()))
            print(f"  {self.night(result.run_date)} {'dbt node tasks':<17} {counts}", flush=True)
        outcome = "published" if result.ok else "FAILED"
        print(f"{self.night(result.run_date)}: {outcome} in {result.seconds:.0f}s", flush=True)

    def warning(self, run_date: dt.date, line: str) -> None:
        print(f"  {self.night(run_date)} {line.split('Z ', 1)[-1]}", flush=True)


def _generate(landing: Path, accounts: int, days: int, drop_days: int) -> list[dt.date]:
    from pipelines.lab.generate import generate

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


def _fresh_warehouse(settings, first: dt.date) -> None:
    """A second `make demo` runs its nights again from scratch: empty warehouse, no publish.

    The demo owns its home. Its nights are already in the warehouse then, and a night older
    than the latest one held is refused (pipelines.ops.preflight); and the gate would refuse the
    first night's publish against the previous publish of four nights (row counts down 75%).
    """
    from pipelines.ops.preflight import latest_night

    latest = latest_night(settings)
    if latest is not None and latest >= first:
        print(f"Re-running the demo from scratch: the warehouse held its nights up to {latest}; removing "
              f"{settings.warehouse} and {settings.published} ...", flush=True)
        for path in (settings.warehouse, settings.warehouse.with_name(settings.warehouse.name + ".wal")):
            path.unlink(missing_ok=True)
        if settings.published.exists():
            for path in settings.published.rglob("*"):  # releases are read-only (chmod 0444)
                if not path.is_symlink():
                    path.chmod(0o755 if path.is_dir() else 0o644)
            shutil.rmtree(settings.published)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.lab.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=ACCOUNTS)
    parser.add_argument("--days", type=int, default=DAYS)
    parser.add_argument("--drop-days", type=int, default=DROP_DAYS)
    parser.add_argument("--verbose", action="store_true", help="also print Airflow's full output")
    args = parser.parse_args(argv)

    started = time.monotonic()
    settings = get_settings()
    log_path = settings.home / "logs" / LOG_NAME
    log_path.parent.mkdir(parents=True, exist_ok=True)
    print(f"Full log: {log_path}", flush=True)
    dates = _generate(settings.landing, args.accounts, args.days, args.drop_days)
    home = airflow_home(settings=settings)
    # The UI started later on this home shows the DAG with the demo's nights as its schedule.
    home.pin({"SEGMENT_MART_START_DATE": dates[0].isoformat(), "SEGMENT_MART_END_DATE": dates[-1].isoformat()})
    _fresh_warehouse(settings, dates[0])
    print(f"Preparing Airflow in {home.path} ...", flush=True)
    prepare(home)
    progress = Progress(dates)
    results = []
    with log_path.open("w", encoding="utf-8") as log:
        for run_date in dates:
            result = dags_test(home, [run_date], echo=args.verbose, log=log, on_step=progress.step,
                               on_warning=progress.warning)[0]
            progress.finish(result)
            results.append(result)
            if not result.ok:
                break
    if not all(r.ok for r in results) or len(results) < len(dates):
        failed = next(r for r in results if not r.ok)
        summary = settings.home / "runs" / f"{failed.run_date.isoformat()}.json"
        print(f"\nThe night {failed.run_date} failed; see {summary} and the full log {log_path}.", file=sys.stderr)
        return 1

    published = settings.published
    quality = settings.quality / dates[-1].isoformat()
    manifest = json.loads((published / "manifest.json").read_text())
    print(f"""
Demo finished in {time.monotonic() - started:.0f}s: {len(dates)} nights ({dates[0]} .. {dates[-1]}) ran through Airflow.

  Published DuckDB file : {published / 'segment_mart.duckdb'}
  Parquet files         : {published / 'parquet'}/<mart>.parquet, or <mart>/ (one file per day or month) ({len(manifest.get('marts', {}))} marts)
  Manifest              : {published / 'manifest.json'}
  HTML report           : {published / 'report.html'}
  Quality report        : {quality / 'quality_report.html'} (JSON: {quality / 'quality_report.json'})
  Run summaries         : {settings.home / 'runs'}/<date>.json
  Full log of this demo : {log_path}

Tier-policy lab (docs/policy-lab.md; the report's "Where to draw the tier lines" shows the advice):
  SEGMENT_MART_HOME={settings.home} .venv/bin/segment-mart simulate --policy examples/tier-policies.yml --run-date {dates[-1]}
  SEGMENT_MART_HOME={settings.home} .venv/bin/segment-mart backtest --run-date {dates[-1]}

Watch it in the Airflow UI:  make airflow-ui   (python -m pipelines.ops.airflow_home standalone)
  then open http://127.0.0.1:8080 (no login) -> DAG segment_mart_nightly; the demo's runs are
  listed with every task's log; trigger a date or clear a night there to re-run it.""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
