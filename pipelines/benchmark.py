"""Benchmarks that print figures (never timed tests): generate, ingest, dbt build.

    python -m pipelines.benchmark --accounts 10000 --days 365 [--drop-days 1] [--dbt]

Each phase runs as its own `segment-mart` subprocess so that its wall time and peak
resident memory are measured alone. Output goes under --work (default /tmp).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path


def _cli() -> str:
    return str(Path(sys.executable).parent / "segment-mart")


# Runs one phase and reports the peak RSS of its largest process, dbt's subprocess
# included (RUSAGE_CHILDREN covers every waited-for descendant).
_PHASE = (
    "import resource, subprocess, sys; "
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode; "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)"
)


def measure(label: str, args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run one phase; returns (seconds, peak RSS in MB of its largest process) and prints them."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _PHASE, *args], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{label} failed with exit code {done.returncode}:\n{done.stderr[-3000:]}")
    peak_mb = int(done.stdout.split()[-1]) / 1024  # KiB on Linux
    print(f"{label:<40} {seconds:>9.1f} s   peak RSS {peak_mb:>8.0f} MB   ({' '.join(args[1:])})", flush=True)
    return seconds, peak_mb


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--drop-days", type=int, default=1, help="nightly drops written at the end")
    parser.add_argument("--start-date", default="2025-01-01")
    parser.add_argument("--format", default="csv")
    parser.add_argument("--work", type=Path, default=Path("/tmp/segment-mart-benchmark"))
    parser.add_argument("--dbt", action="store_true", help="also time dbt build (full, then incremental)")
    opts = parser.parse_args(argv)

    shutil.rmtree(opts.work, ignore_errors=True)
    landing, home = opts.work / "landing", opts.work / "var"
    env = os.environ | {"SEGMENT_MART_HOME": str(home), "SEGMENT_MART_LANDING_DIR": str(landing)}
    start = dt.date.fromisoformat(opts.start_date)
    dates = [start + dt.timedelta(days=opts.days - opts.drop_days + i) for i in range(opts.drop_days)]
    print(f"segment-mart benchmark: {opts.accounts} accounts x {opts.days} days, "
          f"{opts.drop_days} drop(s), {os.cpu_count()} cores", flush=True)

    measure("generate", [_cli(), "generate", "--out", str(landing), "--accounts", str(opts.accounts),
                         "--start-date", opts.start_date, "--days", str(opts.days),
                         "--drop-days", str(opts.drop_days), "--format", opts.format], env)
    size = sum(p.stat().st_size for p in landing.rglob("*") if p.is_file())
    print(f"{'landing size':<40} {size / 1e9:>9.2f} GB", flush=True)
    ingest_seconds = 0.0
    for d in dates:
        seconds, _ = measure(f"ingest {d}", [_cli(), "ingest", "--run-date", d.isoformat()], env)
        ingest_seconds += seconds
    if len(dates) > 1:
        print(f"{'ingest, all drops':<40} {ingest_seconds:>9.1f} s", flush=True)
    if opts.dbt:
        measure(f"dbt build {dates[0]} (full)", [_cli(), "build", "--run-date", dates[0].isoformat()], env)
        if len(dates) > 1:
            measure(f"dbt build {dates[1]} (incremental)", [_cli(), "build", "--run-date", dates[1].isoformat()], env)
        else:
            measure(f"dbt build {dates[0]} (rerun)", [_cli(), "build", "--run-date", dates[0].isoformat()], env)


if __name__ == "__main__":
    main()
