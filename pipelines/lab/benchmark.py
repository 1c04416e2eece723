"""Benchmarks that print figures (never timed tests).

Quick profile (ingestion, optionally dbt, on one engine or both side by side)::

    python -m pipelines.lab.benchmark --accounts 10000 --days 365 [--drop-days 2] [--format csv] [--dbt]
        [--engines duckdb,spark,spark-cluster]

Scale profile (issue 11): at the size users have, a year and a month of history::

    python -m pipelines.lab.benchmark --profile scale --accounts 100000 --work /work/bench/scale \\
        [--landing-365 /work/bench/s100k/landing] [--history 36,365]

For each history H (days of usage before the night, same accounts and seed): generate H days
(the first drop holds the history, the last drop is one ordinary night), ingest the first
drop, a full ``dbt build``, the floor (a hand-written DuckDB query doing the build's core
work over the same lake: account-day usage, 30-day features, MRR per account-month), the
first night's gate and publish (timed too), then one normal night phase by phase: check,
ingest, dbt build, quality gate (audit), publish.
Then the ratio night(H_max)/night(H_min) and full build / floor.

Nights profile (issue 17): what a night costs whatever the data's size, and a run of nights::

    python -m pipelines.lab.benchmark --profile nights --accounts 300 [--nights 30] [--airflow]

Generates ``--nights`` + 1 drops (the first holds the history), runs the first night whole, then
the fixed cost of one ordinary night phase by phase (check, ingest, dbt build, quality gate,
publish; dbt split into start-up, parse, seeds, models, data tests, unit tests from dbt's own
run_results.json and log), the same night again as one ``segment-mart run`` (and, with
``--airflow``, as one ``airflow dags test``), and finally ``segment-mart replay`` of ``--nights``
nights (the measured night and every later one, in order, the last one published).

A night's cost must not grow with the nights already in the daily marts. To show it without
running a year of nights, build one night, then give its warehouse a long daily history and time
the next night (docs/operations.md, cost model of a night's dbt build)::

    python -m pipelines.lab.benchmark daily-history <home> <as-of date> 365
    segment-mart build --run-date <the next date>

Every phase runs as its own process tree (``segment-mart <command>``). Measured per phase:
wall time, CPU time (user + system of the process and every descendant it waited for, dbt's
subprocess included), and the peak resident memory of the whole tree (sampled every 0.1 s,
all processes summed). Also printed: the load average before each phase (the machine may be
shared) and rows per second of ingestion. The figures go to a table on stdout and to
``--json`` (default ``<work>/benchmark.json``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


def _cli() -> str:
    return str(Path(sys.executable).parent / "segment-mart")


@dataclass
class Phase:
    """One measured phase."""

    label: str
    wall_seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    load_average: float
    command: str
    rows: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rows_per_second(self) -> float | None:
        return self.rows / self.wall_seconds if self.rows and self.wall_seconds else None

    def line(self) -> str:
        rate = f"  {self.rows_per_second:>11,.0f} rows/s" if self.rows_per_second else ""
        return (f"{self.label:<44} {self.wall_seconds:>8.1f} s {self.cpu_seconds:>8.1f} s cpu "
                f"{self.peak_rss_mb:>8,.0f} MB   load {self.load_average:>5.2f}{rate}")


def _tree_rss(pid: int, cpu: dict[int, float] | None = None) -> int:
    """Resident memory of ``pid`` and every descendant; records each one's CPU seconds in ``cpu``."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.ZombieProcess):
            total += proc.memory_info().rss
            if cpu is not None:
                times = proc.cpu_times()
                cpu[proc.pid] = times.user + times.system  # its own: its waited children are counted as themselves
    return total


def measure(label: str, args: list[str], env: dict[str, str], rows: int | None = None) -> Phase:
    """Run one phase as a process tree; wall, CPU (tree), peak RSS (tree, sampled). Prints it.

    CPU is the larger of the rusage of the phase's process with every descendant it waited for,
    and the sum of the own CPU time of every process of the tree, sampled every 0.1 s: a
    descendant nobody waits for (PySpark's JVM, started by the dbt process and left to exit on
    its own) is missing from the first; the second misses the last 0.1 s of each process and
    short-lived processes between two samples."""
    load = os.getloadavg()[0]
    started = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = 0
    sampled_cpu: dict[int, float] = {}
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss(proc.pid, sampled_cpu))
            done.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stderr_tail: list[str] = []

    def drain() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            stderr_tail.append(line)
            del stderr_tail[:-60]

    drainer = threading.Thread(target=drain, daemon=True)
    drainer.start()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    drainer.join(timeout=5)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{label} failed with exit code {proc.returncode}:\n{''.join(stderr_tail)[-4000:]}")
    cpu = max(usage.ru_utime + usage.ru_stime, sum(sampled_cpu.values()))
    phase = Phase(label, round(seconds, 2), round(cpu, 2),
                  round(max(peak, usage.ru_maxrss * 1024) / 2**20, 1), round(load, 2), " ".join(args[1:]), rows)
    print(phase.line(), flush=True)
    return phase


def _rows_read(home: Path, run_date: dt.date) -> int:
    from pipelines.intake import lake
    from pipelines.warehouse import in_memory

    con = in_memory()
    try:
        return int(con.execute(f"select coalesce(sum(rows_read), 0) from {lake.audit_relation_sql(home / 'lake')} "
                               "where run_date = ?", [run_date]).fetchall()[0][0])
    finally:
        con.close()


def _drop_dates(start: dt.date, days: int, drop_days: int) -> list[dt.date]:
    return [start + dt.timedelta(days=days - drop_days + i) for i in range(drop_days)]


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# --------------------------------------------------------------------------- the floor

#: The core work of a full build, written by hand over the raw lake: usage per account-day,
#: 30-day usage features as of the run date, MRR per account-month from the latest
#: subscription snapshot. The floor a full rebuild is compared with. Distinct users and
#: features are counted after a GROUP BY rather than with a grouped COUNT(DISTINCT): DuckDB
#: must hold a grouped COUNT(DISTINCT)'s input almost whole (duckdb/duckdb#18826), which
#: runs out of memory_limit at 100M events, while GROUP BY spills to disk.
FLOOR_SQL = """
create or replace table account_day_users as
select trim(account_id) as account_id, cast(occurred_at as date) as activity_date, trim(user_id) as user_id,
    count(*) as event_count
from {events} where _run_date <= $as_of and cast(occurred_at as date) <= $as_of
group by all;

create or replace table account_day_features as
select distinct trim(account_id) as account_id, cast(occurred_at as date) as activity_date,
    nullif(lower(trim(feature)), '') as feature
from {events} where _run_date <= $as_of and cast(occurred_at as date) <= $as_of and nullif(trim(feature), '') is not null;

create or replace table account_days as
with users as (
    select account_id, activity_date, sum(event_count) as event_count, count(*) as active_users
    from account_day_users group by all
),
features as (
    select account_id, activity_date, count(*) as features from account_day_features group by all
)
select users.*, coalesce(features.features, 0) as features
from users left join features using (account_id, activity_date);

create or replace table usage_30d as
select account_id, sum(event_count) as events_30d, count(*) as active_days_30d, max(active_users) as peak_users_30d
from account_days where activity_date > $as_of - 30
group by all;

create or replace table mrr_monthly as
with subs as (
    select trim(account_id) as account_id, start_date, end_date,
        amount * case when is_per_seat then seats else 1 end
            / case billing_interval when 'month' then 1 when 'quarter' then 3 else 12 end as mrr
    from {subscriptions}
    where _run_date = (select max(_run_date) from {subscriptions} where _run_date <= $as_of)
),
months as (
    select unnest(generate_series(date_trunc('month', (select min(start_date) from subs)),
                                  date_trunc('month', $as_of::date), interval 1 month))::date as month_start
),
ends as (
    select month_start, least(month_start + interval 1 month - interval 1 day, $as_of::date)::date as ref_date
    from months
)
select s.account_id, e.month_start, round(sum(s.mrr), 2) as mrr
from subs s inner join ends e on s.start_date <= e.ref_date and (s.end_date is null or s.end_date > e.ref_date)
group by all;
"""


def run_floor(home: Path, as_of: dt.date) -> None:
    """The floor query over ``home``'s lake, written to a scratch DuckDB file (as dbt would)."""
    from pipelines.contract import get_entity
    from pipelines.intake import lake
    from pipelines.settings import Settings

    settings = Settings(home=home)
    target = settings.temp / "floor.duckdb"
    target.unlink(missing_ok=True)
    from pipelines.warehouse import open_connection

    con = open_connection(target, read_only=False, settings=settings)
    try:
        sql = FLOOR_SQL.format(events=lake.relation_sql(settings.lake, get_entity("usage", "events")),
                               subscriptions=lake.relation_sql(settings.lake, get_entity("billing", "subscriptions")))
        for statement in (s for s in sql.split(";") if s.strip()):
            con.execute(statement, {"as_of": as_of} if "$as_of" in statement else None)
    finally:
        con.close()
        target.unlink(missing_ok=True)


# --------------------------------------------------------------------------- a long daily history

#: The models holding one slice per as-of date (config date_partitioned_incremental).
DAILY_SLICED = (
    ("intermediate", "int_account_segments_classified"),
    ("intermediate", "int_account_health_scored"),
    ("intermediate", "int_account_tiers_assigned"),
    ("intermediate", "int_account_signal_states"),
    ("intermediate", "int_account_signals_detected"),
    ("marts", "fct_account_tiers_daily"),
    ("marts", "fct_account_health_daily"),
    ("marts", "fct_account_segments_daily"),
    ("marts", "fct_account_signals"),
    ("intermediate", "int_account_actions_tracked"),
    ("marts", "fct_account_actions_daily"),
)


def build_daily_history(home: Path, as_of: dt.date, nights: int) -> None:
    """Give a warehouse built for one night a long daily history cheaply, to time the next night.

    Copies ``as_of``'s slice of every daily model to the ``nights - 1`` days before it
    (``as_of_date - k``); the health mart's status flips on one day in 7 per account (staggered),
    so that the compact segment history is not one run per account. Then the compact histories
    (segment run bounds, tier changes) get a first build from that history, as an upgrade would.
    A night after this reads as many nights of history as a real year would hold.
    """
    from pipelines.build.dbt import run_dbt
    from pipelines.settings import Settings
    from pipelines.warehouse import connect

    settings = Settings(home=home)
    with connect(settings.warehouse, settings=settings) as con:
        for schema, table in DAILY_SLICED:
            columns = [r[0] for r in con.execute(
                "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
                "order by ordinal_position", [schema, table]).fetchall()]

            def value(column: str, table: str = table) -> str:
                if column == "as_of_date":
                    return "cast(as_of_date - cast(k as integer) as date) as as_of_date"
                if column == "signal_id":
                    return "signal_id || '-' || cast(k as varchar) as signal_id"
                if table == "fct_account_health_daily" and column == "health_status":
                    return ("case when health_status is not null and (hash(account_id) + cast(k as ubigint)) % 7 = 0 "
                            "then case health_status when 'healthy' then 'at-risk' else 'healthy' end "
                            "else health_status end as health_status")
                return f'"{column}"'

            con.execute(f"delete from {schema}.{table} where as_of_date < ?", [as_of])
            con.execute(f"insert into {schema}.{table} select {', '.join(value(c) for c in columns)} "
                        f"from {schema}.{table}, range(1, {int(nights)}) as copies(k) where as_of_date = ?", [as_of])
            print(f"{schema}.{table}: {nights} nights", flush=True)
        con.execute("checkpoint")
    run_dbt(settings, as_of, "run", "--select", "int_account_segment_run_bounds", "int_account_tier_changes",
            "--full-refresh")


# --------------------------------------------------------------------------- profiles


def quick(opts: argparse.Namespace, env_base: dict[str, str]) -> list[Phase]:
    shutil.rmtree(opts.work, ignore_errors=True)
    landing, home = opts.work / "landing", opts.work / "var"
    env = env_base | {"SEGMENT_MART_HOME": str(home), "SEGMENT_MART_LANDING_DIR": str(landing)}
    start = dt.date.fromisoformat(opts.start_date)
    dates = _drop_dates(start, opts.days, opts.drop_days)
    phases = [measure("generate", [_cli(), "generate", "--out", str(landing), "--accounts", str(opts.accounts),
                                   "--start-date", opts.start_date, "--days", str(opts.days),
                                   "--drop-days", str(opts.drop_days), "--format", opts.format,
                                   "--seed", str(opts.seed)], env)]
    print(f"{'landing size':<44} {_size(landing) / 1e9:>8.2f} GB", flush=True)
    for d in dates:
        phase = measure(f"ingest {d}", [_cli(), "ingest", "--run-date", d.isoformat()], env)
        phase.rows = _rows_read(home, d)
        print(f"{'':<44} {phase.rows:,} rows read, {phase.rows_per_second or 0:,.0f} rows/s", flush=True)
        phases.append(phase)
    if opts.dbt:
        later = dates[1] if len(dates) > 1 else dates[0]
        for engine in _engines(opts.engines):
            # the same lake, the same two builds; Spark writes under <home>/spark, DuckDB its file
            tag = "" if engine == "duckdb" else f" [{engine}]"
            labels = (f"dbt build {dates[0]} (full){tag}",
                      f"dbt build {later} ({'incremental' if len(dates) > 1 else 'rerun'}){tag}")
            if engine == "spark-cluster":
                phases += _cluster_builds(opts, env, home, dates[0], later, labels)
                continue
            engine_env = env | {"SEGMENT_MART_ENGINE": engine}
            phases.append(measure(labels[0], [_cli(), "build", "--run-date", dates[0].isoformat()], engine_env))
            phases.append(measure(labels[1], [_cli(), "build", "--run-date", later.isoformat()], engine_env))
        if len(_engines(opts.engines)) > 1:
            print_side_by_side(phases)
    return phases


def _cluster_builds(opts: argparse.Namespace, env: dict[str, str], home: Path, first: dt.date, later: dt.date,
                    labels: tuple[str, str]) -> list[Phase]:
    """The two builds on the project's Spark cluster (pipelines.build.spark_cluster: master, workers,
    Thrift server, each a JVM), dbt over Thrift. The cluster gets a pipeline home of its own
    (its metastore and warehouse) over the same raw lake, and free ports. Each phase counts the
    dbt process tree (the client) plus every JVM of the cluster: the CPU each used during the
    phase and its peak resident memory (VmHWM, reset at the start of the phase), printed JVM by
    JVM; the phase's peak RSS is the client's plus the sum of the JVMs' peaks (an upper bound:
    they need not peak at once)."""
    from pipelines.build import spark_cluster
    from pipelines.settings import Settings

    cluster_home = home.parent / "var-spark-cluster"
    ports = {"SEGMENT_MART_SPARK_MASTER_PORT": str(_free_port()), "SEGMENT_MART_SPARK_THRIFT_PORT": str(_free_port())}
    cluster_env = env | ports | {
        "SEGMENT_MART_HOME": str(cluster_home), "SEGMENT_MART_LAKE_DIR": str(home / "lake"),
        "SEGMENT_MART_ENGINE": "spark", "SEGMENT_MART_DBT_TARGET": "spark_thrift"}
    settings = Settings(**{k.removeprefix("SEGMENT_MART_").lower(): v for k, v in cluster_env.items()
                           if k.startswith("SEGMENT_MART_") and k != "SEGMENT_MART_DBT_BUILD_EXCLUDE"})
    started = time.perf_counter()
    load = os.getloadavg()[0]
    spark_cluster.start(settings, progress=lambda line: print(f"  {line}", flush=True))
    print(f"{'spark cluster start':<44} {time.perf_counter() - started:>8.1f} s   load {load:>5.2f}", flush=True)
    print(f"  cluster: {settings.spark_workers} workers x {settings.spark_worker_cores} core, executors "
          f"{settings.spark_executor_memory}, Thrift driver {settings.spark_thrift_driver_memory}, daemons "
          f"{settings.spark_daemon_memory}", flush=True)
    phases = []
    try:
        for label, run_date in zip(labels, (first, later), strict=True):
            jvms = spark_cluster.processes(settings)
            cpu_before = {p.pid: spark_cluster.cpu_seconds(p.pid) for p in jvms}
            for p in jvms:
                with contextlib.suppress(OSError):
                    Path(f"/proc/{p.pid}/clear_refs").write_text("5")  # reset VmHWM: the phase's own peak
            phase = measure(label, [_cli(), "build", "--run-date", run_date.isoformat()], cluster_env)
            per_jvm = {}
            for p in jvms:
                _, peak = spark_cluster.memory_mb(p.pid)
                per_jvm[p.name] = {"pid": p.pid, "cpu_seconds": round(spark_cluster.cpu_seconds(p.pid) - cpu_before[p.pid], 2),
                                   "peak_rss_mb": round(peak, 1)}
                print(f"  {p.name:<42} {'':>10} {per_jvm[p.name]['cpu_seconds']:>8.1f} s cpu "
                      f"{peak:>8,.0f} MB", flush=True)
            phase.extra = {"client": {"cpu_seconds": phase.cpu_seconds, "peak_rss_mb": phase.peak_rss_mb},
                           "jvms": per_jvm}
            phase.cpu_seconds = round(phase.cpu_seconds + sum(j["cpu_seconds"] for j in per_jvm.values()), 2)
            phase.peak_rss_mb = round(phase.peak_rss_mb + sum(j["peak_rss_mb"] for j in per_jvm.values()), 1)
            print(f"  {'total (dbt client + every JVM)':<42} {phase.wall_seconds:>8.1f} s {phase.cpu_seconds:>8.1f} s cpu "
                  f"{phase.peak_rss_mb:>8,.0f} MB", flush=True)
            phases.append(phase)
    finally:
        spark_cluster.stop(settings, progress=lambda line: print(f"  {line}", flush=True))
    return phases


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _engines(value: str) -> list[str]:
    engines = [e.strip() for e in value.split(",") if e.strip()]
    unknown = sorted(set(engines) - {"duckdb", "spark", "spark-cluster"})
    if unknown or not engines:
        raise SystemExit(f"--engines: duckdb, spark and/or spark-cluster, comma separated (got {value!r})")
    return engines


def print_side_by_side(phases: list[Phase]) -> None:
    """The dbt phases of both engines on one line each: wall, CPU and peak RSS (on Spark's
    session target PySpark starts the JVM as a child of the dbt process: both are in the tree)."""
    by_label = {p.label: p for p in phases}
    for engine in ("spark", "spark-cluster"):
        pairs = [(label, duck, by_label.get(f"{label} [{engine}]")) for label, duck in by_label.items()
                 if label.startswith("dbt build") and "[" not in label]
        pairs = [(label, duck, other) for label, duck, other in pairs if other is not None]
        if not pairs:
            continue
        print(f"\n{'dbt phase':<34} {'DuckDB wall':>11} {'cpu':>8} {'RSS MB':>8} | {engine + ' wall':>18} {'cpu':>8} "
              f"{'RSS MB':>8} {'ratio':>7}", flush=True)
        for label, duck, spark in pairs:
            print(f"{label:<34} {duck.wall_seconds:>9.1f} s {duck.cpu_seconds:>7.1f}s {duck.peak_rss_mb:>8,.0f} | "
                  f"{spark.wall_seconds:>16.1f} s {spark.cpu_seconds:>7.1f}s {spark.peak_rss_mb:>8,.0f} "
                  f"{spark.wall_seconds / max(duck.wall_seconds, 0.01):>6.1f}x", flush=True)


def scale(opts: argparse.Namespace, env_base: dict[str, str]) -> tuple[list[Phase], dict[str, Any]]:
    from pipelines.build.dbt import run_results_path
    from pipelines.settings import Settings

    phases: list[Phase] = []
    summary: dict[str, Any] = {"nights": {}, "full_build": {}, "floor": {}}
    # in the order given (e.g. 365,36: the longer, riskier history first); the ratio is longest/shortest
    histories = [int(h) for h in opts.history.split(",")]
    start = dt.date.fromisoformat(opts.start_date)
    for history in histories:
        work = opts.work / f"h{history}"
        shutil.rmtree(work, ignore_errors=True)
        home = work / "var"
        reuse = opts.landing_365 if history == 365 and opts.landing_365 else None
        landing = Path(reuse) if reuse else work / "landing"
        env = env_base | {"SEGMENT_MART_HOME": str(home), "SEGMENT_MART_LANDING_DIR": str(landing)}
        first, night = _drop_dates(start, history, 2)
        tag = f"[{history:>3} d]"
        if reuse:
            print(f"{tag} reusing the extracts in {landing} (read-only)", flush=True)
        else:
            phases.append(measure(f"{tag} generate", [
                _cli(), "generate", "--out", str(landing), "--accounts", str(opts.accounts), "--start-date",
                opts.start_date, "--days", str(history), "--drop-days", "2", "--seed", str(opts.seed)], env))
        print(f"{tag} landing size {_size(landing) / 1e9:.2f} GB", flush=True)
        phase = measure(f"{tag} ingest first drop {first}", [_cli(), "ingest", "--run-date", first.isoformat()], env)
        phase.rows = _rows_read(home, first)
        print(f"{'':<44} {phase.rows:,} rows read, {phase.rows_per_second or 0:,.0f} rows/s", flush=True)
        phases.append(phase)
        if not opts.no_dbt:
            full = measure(f"{tag} dbt build {first} (full)", [_cli(), "build", "--run-date", first.isoformat()], env)
            phases.append(full)
            summary["full_build"][history] = asdict(full)
        floor = measure(f"{tag} floor query {first}", [sys.executable, "-m", "pipelines.lab.benchmark", "floor",
                                                        str(home), first.isoformat()], env)
        phases.append(floor)
        summary["floor"][history] = asdict(floor)
        if not opts.no_dbt:
            # The first night's own gate and release, so that the timed night is an ordinary one
            # (the gate validates its own partitions, publish adds to the last release) rather
            # than the first gate and first release of this warehouse.
            for label, command in (("quality gate", "audit"), ("publish", "publish")):
                phases.append(measure(f"{tag} first night {first}: {label}",
                                      [_cli(), command, "--run-date", first.isoformat()], env))
        steps = [("check", "check"), ("ingest", "ingest")]
        if not opts.no_dbt:
            steps += [("dbt build", "build"), ("quality gate", "audit"), ("publish", "publish")]
        night_phases = []
        for label, command in steps:
            phase = measure(f"{tag} night {night}: {label}", [_cli(), command, "--run-date", night.isoformat()], env)
            if command == "ingest":
                phase.rows = _rows_read(home, night)
            if command == "build":
                top = top_models(run_results_path(Settings(home=home), night))
                phase.extra["top_models"] = top
                print(f"{'':<4}the night's slowest dbt nodes (run_results.json):", flush=True)
                for node in top:
                    print(f"{'':<6}{node['node']:<70} {node['seconds']:>8.1f} s", flush=True)
            night_phases.append(phase)
        phases += night_phases
        total = {k: round(sum(getattr(p, k) for p in night_phases), 2) for k in ("wall_seconds", "cpu_seconds")}
        total["peak_rss_mb"] = max(p.peak_rss_mb for p in night_phases)
        summary["nights"][history] = total
        print(f"{tag} night {night} total: {total['wall_seconds']:.1f} s wall, {total['cpu_seconds']:.1f} s cpu, "
              f"peak {total['peak_rss_mb']:,.0f} MB", flush=True)
        if opts.clean:
            shutil.rmtree(work, ignore_errors=True)
    lo, hi = min(histories), max(histories)
    if lo != hi:
        ratio = summary["nights"][hi]["wall_seconds"] / summary["nights"][lo]["wall_seconds"]
        summary["night_ratio"] = {"histories": [lo, hi], "wall": round(ratio, 2)}
        print(f"night({hi})/night({lo}) wall time: {ratio:.2f}", flush=True)
    for history, full in summary["full_build"].items():
        ratio = full["wall_seconds"] / summary["floor"][history]["wall_seconds"]
        summary.setdefault("floor_ratio", {})[history] = round(ratio, 2)
        print(f"[{history:>3} d] full build / floor query wall time: {ratio:.2f}", flush=True)
    if opts.fixed_cost_accounts and not opts.no_dbt:
        # what every night pays whatever the data's size: a night at a few hundred accounts
        print(f"[fixed] a night at {opts.fixed_cost_accounts} accounts, phase by phase", flush=True)
        fixed_phases, _night, ctx = night_fixed_cost(opts.work / "fixed", opts.fixed_cost_accounts, 60, 2,
                                                    opts.start_date, opts.seed, env_base)
        phases += fixed_phases
        summary["fixed_cost"] = {"accounts": opts.fixed_cost_accounts, **ctx["fixed"]}
        if opts.clean:
            shutil.rmtree(opts.work / "fixed", ignore_errors=True)
    return phases, summary


# --------------------------------------------------------------------------- the nights profile


def _parse_time(value: str) -> float:
    """A dbt artifact timestamp (ISO, UTC, ``Z``) as seconds since the epoch."""
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).replace(tzinfo=dt.UTC).timestamp()


#: The kinds of node a dbt build runs, as run_results.json names them (unique_id prefix).
DBT_NODE_KINDS = (("operation", "hooks"), ("seed", "seeds"), ("model", "models"), ("test", "data tests"),
                  ("unit_test", "unit tests"), ("snapshot", "snapshots"))


def dbt_split(results_file: Path, log_lines: list[str], started: float, ended: float) -> dict[str, Any]:
    """Where a ``dbt build`` phase's wall time went, from dbt's own run_results.json and log.

    ``started``/``ended``: the phase's process start and end (epoch seconds). Start-up is the
    time until dbt's invocation began (the CLI, its checks, Python importing dbt); parse is
    from there to the first node (project load, partial or full parse, graph, connection);
    then the nodes by kind (each node's execution_time: compile and execute); "between nodes"
    is the rest of dbt's run (its per-node overhead); "after" covers artifacts and exit.
    ``parse_mode`` says whether dbt re-used its saved parse (and if not, why)."""
    data = json.loads(results_file.read_text())
    meta = data["metadata"]
    invocation = _parse_time(meta["invocation_started_at"])
    generated = _parse_time(meta["generated_at"])
    run_start = generated - float(data["elapsed_time"])
    prefixes = dict(DBT_NODE_KINDS)
    kinds: dict[str, float] = {}
    counts: dict[str, int] = {}
    for result in data["results"]:
        label = prefixes.get(result["unique_id"].split(".", 1)[0], "other")
        kinds[label] = kinds.get(label, 0.0) + float(result.get("execution_time") or 0.0)
        counts[label] = counts.get(label, 0) + 1
    split = {"start-up": invocation - started, "parse": run_start - invocation}
    split |= {label: kinds[label] for _, label in DBT_NODE_KINDS if label in kinds}
    split["between nodes"] = float(data["elapsed_time"]) - sum(kinds.values())
    split["after"] = ended - generated
    mode = "unknown"
    for line in log_lines:
        text = line.split("]:", 1)[-1].strip()
        if "Unable to do partial parsing" in line or "Failed to load parsed file" in line:
            mode = "full: " + text[:160]
            break
        if "Partial parsing enabled" in line:
            mode = "partial: " + text[:160]
    return {"seconds": {k: round(v, 2) for k, v in split.items()}, "nodes": counts, "parse_mode": mode}


def _log_from(path: Path, offset: int) -> list[str]:
    if not path.exists():
        return []
    with path.open("rb") as fh:
        fh.seek(offset)
        return fh.read().decode("utf-8", "replace").splitlines()


def night_fixed_cost(work: Path, accounts: int, days: int, drops: int, start_date: str, seed: int,
                     env_base: dict[str, str]) -> tuple[list[Phase], list[Phase], dict[str, Any]]:
    """Generate ``accounts`` with ``drops`` nightly drops into ``work``, run the first night, then
    time the second phase by phase (the dbt build split with dbt's run_results.json and log).
    Returns (all phases, the night's phases, context: home, env, dates, night, fixed)."""
    from pipelines.build.dbt import run_results_path
    from pipelines.settings import Settings

    shutil.rmtree(work, ignore_errors=True)
    landing, home = work / "landing", work / "var"
    env = env_base | {"SEGMENT_MART_HOME": str(home), "SEGMENT_MART_LANDING_DIR": str(landing)}
    start = dt.date.fromisoformat(start_date)
    dates = _drop_dates(start, days, drops)
    first, night = dates[0], dates[1]
    phases = [measure("generate", [_cli(), "generate", "--out", str(landing), "--accounts", str(accounts),
                                   "--start-date", start_date, "--days", str(days),
                                   "--drop-days", str(drops), "--seed", str(seed)], env)]
    phases.append(measure(f"first night {first} (run)", [_cli(), "run", "--run-date", first.isoformat()], env))
    dbt_log = home / "dbt_logs" / "dbt.log"
    night_phases: list[Phase] = []
    for label, command in (("check", "check"), ("ingest", "ingest"), ("dbt build", "build"),
                           ("quality gate", "audit"), ("publish", "publish")):
        offset = dbt_log.stat().st_size if dbt_log.exists() else 0
        began = time.time()
        phase = measure(f"night {night}: {label}", [_cli(), command, "--run-date", night.isoformat()], env)
        if command == "build":
            split = dbt_split(run_results_path(Settings(home=home), night), _log_from(dbt_log, offset),
                              began, time.time())
            phase.extra["dbt"] = split
            for part, seconds in split["seconds"].items():
                count = split["nodes"].get(part)
                print(f"{'':<4}{part + (f' ({count})' if count else ''):<40} {seconds:>8.1f} s", flush=True)
            print(f"{'':<4}parse: {split['parse_mode']}", flush=True)
        night_phases.append(phase)
    phases += night_phases
    fixed = {k: round(sum(getattr(p, k) for p in night_phases), 2) for k in ("wall_seconds", "cpu_seconds")}
    print(f"night {night}, phase by phase: {fixed['wall_seconds']:.1f} s wall, {fixed['cpu_seconds']:.1f} s cpu",
          flush=True)
    return phases, night_phases, {"home": home, "env": env, "dates": dates, "night": night, "fixed": fixed}


def top_models(run_results: Path, n: int = 10) -> list[dict[str, Any]]:
    """The ``n`` slowest nodes of a dbt build (run_results.json, execution_time), slowest first."""
    results = json.loads(run_results.read_text())["results"]
    ranked = sorted(results, key=lambda r: r.get("execution_time") or 0, reverse=True)[:n]
    return [{"node": r["unique_id"].split(".", 2)[-1] if r["unique_id"].startswith("model.")
             else r["unique_id"].split(".", 1)[0] + ":" + r["unique_id"].split(".", 2)[-1],
             "seconds": round(r.get("execution_time") or 0, 2), "status": r.get("status")} for r in ranked]


def nights(opts: argparse.Namespace, env_base: dict[str, str]) -> tuple[list[Phase], dict[str, Any]]:
    """The fixed cost of one night at ``--accounts``, phase by phase, and ``--nights`` replayed."""
    from pipelines.build.dbt import run_results_path
    from pipelines.settings import Settings

    phases, _night_phases, ctx = night_fixed_cost(opts.work, opts.accounts, opts.days, opts.nights + 1,
                                                  opts.start_date, opts.seed, env_base)
    home, env, dates, night, fixed = ctx["home"], ctx["env"], ctx["dates"], ctx["night"], ctx["fixed"]
    first = dates[0]
    whole = measure(f"night {night} again, one process (run)", [_cli(), "run", "--run-date", night.isoformat()], env)
    phases.append(whole)
    summary: dict[str, Any] = {"night": {"run_date": night, "phase_by_phase": fixed, "run": asdict(whole)}}
    if opts.airflow:
        airflow = [sys.executable, "-m", "pipelines.ops.airflow_home"]
        # the DAG runs no task for a logical date before its start date (default 2026-01-01)
        dag_env = env | {"SEGMENT_MART_START_DATE": first.isoformat()}
        measure("airflow: prepare (db migrate, pool)", [*airflow, "prepare"], dag_env)
        results = run_results_path(Settings(home=home), night)
        before = results.stat().st_mtime if results.exists() else 0.0
        dag = measure(f"night {night} again: airflow dags test", [*airflow, "dags-test", night.isoformat()], dag_env)
        if not results.exists() or results.stat().st_mtime <= before:
            raise SystemExit(f"airflow dags test of {night} ran no dbt build ({results} not rewritten): not a night's time")
        phases.append(dag)
        summary["night"]["airflow_dags_test"] = asdict(dag)
    last = dates[-1]
    replay = measure(f"replay {opts.nights} nights {night} .. {last}",
                     [_cli(), "replay", "--from-date", night.isoformat(), "--to-date", last.isoformat()], env)
    phases.append(replay)
    summary["replay"] = {"nights": opts.nights, "wall_seconds": replay.wall_seconds, "cpu_seconds": replay.cpu_seconds,
                         "per_night_seconds": round(replay.wall_seconds / opts.nights, 2)}
    print(f"replay: {opts.nights} nights in {replay.wall_seconds:.1f} s wall "
          f"({replay.wall_seconds / opts.nights:.1f} s a night), {replay.cpu_seconds:.1f} s cpu", flush=True)
    return phases, summary


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["floor"]:  # a phase of the scale profile, run in its own process
        run_floor(Path(argv[1]), dt.date.fromisoformat(argv[2]))
        return
    if argv[:1] == ["daily-history"]:  # daily-history HOME AS_OF NIGHTS: see build_daily_history
        build_daily_history(Path(argv[1]), dt.date.fromisoformat(argv[2]), int(argv[3]))
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--profile", choices=("quick", "scale", "nights"), default="quick")
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=365, help="quick profile: simulated days")
    parser.add_argument("--drop-days", type=int, default=1, help="quick profile: nightly drops written at the end")
    parser.add_argument("--history", default="36,365",
                        help="scale profile: days of history, comma separated, run in this order")
    parser.add_argument("--landing-365", type=Path, help="scale profile: reuse these extracts (read-only) for 365 d")
    parser.add_argument("--start-date", default="2025-01-01")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--format", default="csv")
    parser.add_argument("--work", type=Path, default=Path("/tmp/segment-mart-benchmark"))
    parser.add_argument("--json", type=Path, help="where to write the figures (default <work>/benchmark.json)")
    parser.add_argument("--dbt", action="store_true", help="quick profile: also time dbt build (full, incremental)")
    parser.add_argument("--engines", default="duckdb",
                        help="quick profile with --dbt: the engines whose dbt builds are timed, e.g. duckdb,spark-cluster "
                             "(spark: the local session target; spark-cluster: the project's cluster over Thrift, "
                             "every JVM measured; the same lake; figures side by side; Java 17+, docs/spark.md)")
    parser.add_argument("--no-dbt", action="store_true", help="scale profile: ingestion and floor only")
    parser.add_argument("--fixed-cost-accounts", type=int, default=300,
                        help="scale profile: also time a night at this many accounts (its fixed cost; 0 = skip)")
    parser.add_argument("--clean", action="store_true", help="scale profile: delete each history's work folder")
    parser.add_argument("--nights", type=int, default=30,
                        help="nights profile: nights replayed (the measured night and the later ones)")
    parser.add_argument("--airflow", action="store_true",
                        help="nights profile: also time the measured night as one `airflow dags test`")
    opts = parser.parse_args(argv)

    env = os.environ.copy()
    print(f"segment-mart benchmark ({opts.profile}): {opts.accounts:,} accounts, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    if env.get("SEGMENT_MART_DBT_BUILD_EXCLUDE"):
        print(f"dbt builds exclude {env['SEGMENT_MART_DBT_BUILD_EXCLUDE']!r} (SEGMENT_MART_DBT_BUILD_EXCLUDE)", flush=True)
    print(f"{'phase':<44} {'wall':>10} {'cpu':>12} {'peak RSS':>11}", flush=True)
    opts.work.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {}
    if opts.profile == "scale":
        phases, summary = scale(opts, env)
    elif opts.profile == "nights":
        phases, summary = nights(opts, env)
    else:
        phases = quick(opts, env)
    out = opts.json or opts.work / "benchmark.json"
    out.write_text(json.dumps({
        "profile": opts.profile, "accounts": opts.accounts, "cores": os.cpu_count(),
        "arguments": {k: str(v) for k, v in vars(opts).items()},
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "phases": [asdict(p) | {"rows_per_second": p.rows_per_second} for p in phases],
        **summary,
    }, indent=2, default=str))
    print(f"figures written to {out}", flush=True)


if __name__ == "__main__":
    main()
