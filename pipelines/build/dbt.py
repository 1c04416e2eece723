"""Running dbt for one as-of date.

dbt runs as a subprocess of the calling task, never in-process: dbt-duckdb keeps
the warehouse file open in-process unless every connection is closed, and the file
admits a single writer. One subprocess per call also keeps Airflow workers free of
dbt's global state. A run of nights (replay, a soak) shares one dbt process that loads
the project once (:class:`DbtSession`, pipelines/build/dbt_worker.py). Output is streamed line
by line to the log (progress on long builds) and dbt's run_results.json is kept per run
date for the quality gate.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import shutil
import subprocess
import sys
from collections import deque
from pathlib import Path

from pipelines import duck
from pipelines.build.engine import check_engine, dbt_target
from pipelines.errors import DataProblem, Transient
from pipelines.settings import Settings

log = logging.getLogger(__name__)


#: Where dbt reads the as-of date of a run (macro as_of_date_string). dbt copies every
#: DBT_ENV_CUSTOM_ENV_* variable into the ``metadata.env`` of its artifacts, so the run_results
#: of a build also say which night they are (pipelines/build/dbt_results.py).
AS_OF_DATE_ENV = "DBT_ENV_CUSTOM_ENV_SEGMENT_MART_AS_OF_DATE"


class DbtFailed(DataProblem, RuntimeError):
    """dbt exited non-zero; the message lists the failing nodes."""


class DbtWarehouseLocked(Transient):
    """dbt could not open the warehouse: another process holds DuckDB's lock on the file
    (DuckDB's "Could not set lock on file"). Nothing was built; the same build passes once the
    other process is done, so it is retried."""


#: What DuckDB says (through dbt-duckdb) when another process holds the file's write lock.
DUCKDB_LOCK_MESSAGE = "Could not set lock on file"


def dbt_executable() -> str:
    """The dbt next to this interpreter (the project's virtual environment), else PATH."""
    local = Path(sys.executable).parent / "dbt"
    return str(local) if local.exists() else (shutil.which("dbt") or "dbt")


def target_dir(settings: Settings) -> Path:
    return settings.home / "dbt_target"


def run_results_path(settings: Settings, run_date: dt.date) -> Path:
    return settings.quality / run_date.isoformat() / "dbt_run_results.json"


def failed_nodes(results_file: Path) -> list[str]:
    from pipelines.build.dbt_results import RunResults, RunResultsError

    try:
        return [r.describe() for r in RunResults.load(results_file).failures]
    except RunResultsError:
        return []


def _pyspark_error_log(line: str) -> str | None:
    """The message of one of PySpark's JSON error records, else None.

    PySpark 4 logs every SQL exception it raises as a JSON record with the whole Java
    stack trace (pyspark/errors/exceptions/base.py, `_log_exception`, unconditionally,
    on the "SQLQueryContextLogger"), including the ones dbt-spark expects and handles
    (e.g. looking up a relation that does not exist yet). dbt reports real failures
    itself, so the log keeps only the first line of the message.
    """
    if not line.startswith('{"ts":') or "QueryContextLogger" not in line:
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return str(record.get("msg", "")).splitlines()[0][:300] if isinstance(record, dict) else None


#: Logged by Spark for every statement dbt-spark's session method runs: its cursor calls
#: ``SparkSession.builder.config(...).getOrCreate()`` per statement (dbt/adapters/spark/session.py),
#: and Spark warns each time that the session exists and only runtime SQL settings apply.
SPARK_SESSION_REUSE_WARNING = "WARN SparkSession: Using an existing Spark session"


def dbt_environment(settings: Settings) -> dict[str, str]:
    """What dbt_project/profiles.yml and the models read from the environment."""
    from pipelines.build.spark_marts import spark_warehouse_uri

    return duck.dbt_env(settings) | {
        "SEGMENT_MART_DBT_WAREHOUSE": str(settings.warehouse),
        "SEGMENT_MART_DBT_THREADS": str(settings.dbt_threads),
        "SEGMENT_MART_DBT_SPARK_DIR": str(settings.spark_home),
        "SEGMENT_MART_DBT_SPARK_MASTER": settings.spark_master,
        "SEGMENT_MART_DBT_SPARK_DRIVER_MEMORY": settings.spark_driver_memory,
        "SEGMENT_MART_DBT_SPARK_WAREHOUSE": spark_warehouse_uri(settings),
        "SEGMENT_MART_DBT_SPARK_THRIFT_HOST": settings.spark_thrift_host,
        "SEGMENT_MART_DBT_SPARK_THRIFT_PORT": str(settings.spark_thrift_port),
        "SEGMENT_MART_DBT_SPARK_THRIFT_THREADS": str(settings.spark_thrift_threads),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }


def _log_line(line: str, tail: deque[str]) -> None:
    """Log one line of dbt's output (and keep it in ``tail``), less PySpark's noise."""
    spark_error = _pyspark_error_log(line)
    if spark_error is not None:
        log.debug("spark | %s", spark_error)
        return
    if SPARK_SESSION_REUSE_WARNING in line:
        return  # one per statement, nothing to act on (see the constant)
    log.info("dbt | %s", line.rstrip())
    tail.append(line.rstrip())


def stream_dbt(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, list[str]]:
    """Run a dbt command line, streaming its output to the log; returns (exit code, last lines)."""
    log.info("running %s", " ".join(args))
    with subprocess.Popen(
        args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
    ) as proc:
        assert proc.stdout is not None
        tail: deque[str] = deque(maxlen=15)
        for line in proc.stdout:
            _log_line(line, tail)
        code = proc.wait()
    return code, list(tail)


class DbtSession:
    """One dbt process for many commands on one pipeline home: a run of nights (``replay``, a
    soak) starts dbt and loads the project once instead of every night
    (``pipelines/build/dbt_worker.py`` says why, and what it costs otherwise).

    Use it as a context manager and pass it to :func:`run_dbt` (``session=``); the process
    starts with the first command and ends with the block. Between two commands dbt holds no
    handle on the DuckDB file. DuckDB only: on Spark, dbt-spark's session target keeps a JVM with
    the embedded metastore open in the process; :func:`dbt_session` gives no session there and
    every command runs as its own ``dbt`` process, as a single night does.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> DbtSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _start(self) -> subprocess.Popen[str]:
        if self._proc is None or self._proc.poll() is not None:
            env = os.environ | dbt_environment(self.settings)
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "pipelines.build.dbt_worker"], cwd=self.settings.dbt_project_dir, env=env,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
            )
        return self._proc

    def run(self, args: list[str], env: dict[str, str]) -> tuple[int, list[str]]:
        """Run one dbt command line (``args[0]`` is the dbt executable, as for :func:`stream_dbt`)
        with ``env`` set; returns (exit code, last lines of its output)."""
        from pipelines.build.dbt_worker import DONE

        log.info("running in the session's dbt process: %s", " ".join(args))
        proc = self._start()
        assert proc.stdin is not None and proc.stdout is not None
        command = args[1:]
        parse = _project_arguments(command)
        proc.stdin.write(json.dumps({"args": command, "parse": parse, "env": env}) + "\n")
        proc.stdin.flush()
        tail: deque[str] = deque(maxlen=15)
        for line in proc.stdout:
            if line.startswith(DONE):
                return int(line[len(DONE):].strip() or 2), list(tail)
            _log_line(line, tail)
        code = proc.wait()
        self._proc = None
        tail.append(f"the session's dbt process ended unexpectedly (exit {code})")
        return code or 2, list(tail)

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            if proc.stdout is not None:
                for line in proc.stdout:
                    _log_line(line, deque(maxlen=1))
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


#: The options that say which project dbt loads and where its artifacts go (see run_dbt).
_PROJECT_OPTIONS = ("--project-dir", "--profiles-dir", "--target", "--target-path", "--log-path")


def _project_arguments(command: list[str]) -> list[str]:
    """The options of a dbt command line that load the project: the worker's ``dbt parse``."""
    found = ["--no-use-colors"]
    for i, arg in enumerate(command[:-1]):
        if arg in _PROJECT_OPTIONS:
            found += [arg, command[i + 1]]
    return found


def dbt_session(settings: Settings) -> DbtSession | contextlib.nullcontext[None]:
    """A :class:`DbtSession` for a run of commands on ``settings``' home (DuckDB), else a context
    giving None (Spark: each command its own process; see DbtSession)."""
    return DbtSession(settings) if dbt_target(settings) != "spark" else contextlib.nullcontext(None)


def run_dbt(settings: Settings, run_date: dt.date, command: str = "build", *extra: str,
            session: DbtSession | None = None) -> Path:
    """Run ``dbt <command>`` for the as-of date (in ``session``'s dbt process when given, else a
    dbt process of its own); returns the kept run_results.json."""
    check_engine(settings)
    if dbt_target(settings) == "spark":
        settings.spark_home.mkdir(parents=True, exist_ok=True)
    target = target_dir(settings)
    env = os.environ | dbt_environment(settings)
    args = [
        dbt_executable(), command, "--no-use-colors",
        "--project-dir", str(settings.dbt_project_dir),
        "--profiles-dir", str(settings.dbt_project_dir),
        "--target", dbt_target(settings),
        "--target-path", str(target),
        "--log-path", str(settings.home / "dbt_logs"),
        *extra,
    ]
    # The as-of date goes in the environment, not in --vars: dbt re-parses the whole project
    # whenever --vars change, and reads this variable only when it executes (macro
    # as_of_date_string), so every night re-uses the last parse (dbt_project/macros/as_of_date.sql).
    env[AS_OF_DATE_ENV] = run_date.isoformat()
    kept = run_results_path(settings, run_date)
    produced = target / "run_results.json"
    # Results of an earlier build must never pass for this one's (the gate and the
    # DAG's per-model tasks read them).
    kept.unlink(missing_ok=True)
    produced.unlink(missing_ok=True)
    settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
    if session is not None:
        code, tail = session.run(args, {AS_OF_DATE_ENV: run_date.isoformat()})
    else:
        code, tail = stream_dbt(args, settings.dbt_project_dir, env)
    if produced.exists():
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(produced, kept)
    if code != 0:
        from pipelines.build.dbt_failures import (
            explain_failures,  # the rows a failed test found, the fix
        )

        failing = explain_failures(settings, produced) if produced.exists() else []
        # No node results (e.g. a parse or profile error): dbt's last words say why.
        listing = "\n".join(f"  - {f}" for f in failing) or "\n".join(f"  | {t}" for t in tail)
        if DUCKDB_LOCK_MESSAGE in listing or any(DUCKDB_LOCK_MESSAGE in t for t in tail):
            raise DbtWarehouseLocked(f"dbt {command} for {run_date} could not open the warehouse {settings.warehouse}: "
                                     f"another process holds it (exit {code}):\n{listing}")
        raise DbtFailed(f"dbt {command} for {run_date} failed (exit {code}):\n{listing}")
    return kept
