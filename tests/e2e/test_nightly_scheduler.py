"""The nightly DAG under the real scheduler: `airflow standalone` (scheduler, dag processor,
triggerer, API server) with the LocalExecutor running tasks in parallel processes.

The DAG is unpaused with start = end = the drop's date, so the scheduler's catchup creates the
one run by itself. The run must succeed with no DuckDB lock error in any task log, and the
tasks of the one-slot warehouse pool must never have overlapped while others ran in parallel.
"""

from __future__ import annotations

import contextlib
import itertools
import signal
import socket
import sqlite3
import subprocess
import time

import pytest

from pipelines.ops.airflow_home import stop_session
from tests.e2e.conftest import DAG_TEST_DBT_EXCLUDE, Night, make_night

pytestmark = pytest.mark.e2e

DAG_ID = "segment_mart_nightly"
POOL = "segment_mart_warehouse"
RUN_TIMEOUT_SECONDS = 900


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def scheduled(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e_scheduler")
    night = make_night(root, drop_days=1, api_port=_free_port(), extra_env=DAG_TEST_DBT_EXCLUDE)
    day = night.drops[-1].isoformat()
    night.airflow.extra_env |= {
        "SEGMENT_MART_START_DATE": day,
        "SEGMENT_MART_END_DATE": day,
        # Paused until the API server answers: on a loaded machine the scheduler can queue the
        # first task before the API server listens, and the task fails on "connection refused".
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "600",
    }
    log = (root / "standalone.log").open("w")
    # SIGINT back to the default in the child, as pipelines.ops.airflow_home.standalone does: when
    # pytest runs as a background job (make test's other processes, CI scripts) SIGINT arrives
    # ignored, standalone inherits that, and the stop below waited out its whole timeout (60 s)
    # before ending the session with SIGTERM.
    proc = night.airflow.popen("standalone", stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        _unpause_when_ready(night, proc)
        state = _wait_for_run(night, proc)
        yield night, state
    finally:
        stop_session(proc, timeout=60)  # SIGINT (standalone stops its components), then the session
        log.close()


def _query(night: Night, sql: str, *args) -> list[tuple]:
    if not night.airflow.database.exists():
        return []
    con = sqlite3.connect(f"file:{night.airflow.database}?mode=ro", uri=True, timeout=30)
    try:
        return con.execute(sql, args).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        con.close()


def _unpause_when_ready(night: Night, proc: subprocess.Popen) -> None:
    """Unpause the DAG once the API server (the tasks' execution API) accepts connections and
    the dag processor has registered the DAG."""
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"airflow standalone exited with {proc.returncode}; see {night.root}/standalone.log")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", night.airflow.api_port), timeout=2):
            if _query(night, "select dag_id from dag where dag_id = ?", DAG_ID):
                night.airflow.airflow("dags", "unpause", DAG_ID, capture=True)
                return
        time.sleep(2)
    raise AssertionError(f"the API server did not start in {RUN_TIMEOUT_SECONDS}s; see {night.root}")


def _wait_for_run(night: Night, proc: subprocess.Popen) -> str:
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"airflow standalone exited with {proc.returncode}; see {night.root}/standalone.log")
        rows = _query(night, "select state from dag_run where dag_id = ?", DAG_ID)
        states = [r[0] for r in rows]
        if states and all(s in ("success", "failed") for s in states):
            return "failed" if "failed" in states else "success"
        time.sleep(5)
    raise AssertionError(f"the scheduled run did not finish in {RUN_TIMEOUT_SECONDS}s; see {night.root}")


def test_scheduled_run_succeeds(scheduled):
    night, state = scheduled
    runs = _query(night, "select run_type, logical_date, state from dag_run where dag_id = ?", DAG_ID)
    assert len(runs) == 1 and runs[0][0] == "scheduled", runs
    failed = _query(night, "select task_id, state from task_instance where dag_id = ? and state != 'success'", DAG_ID)
    assert state == "success", f"run {state}; tasks not successful: {failed}; logs under {night.airflow.logs}"
    assert night.manifest()["run_date"] == night.drops[-1].isoformat()


def test_no_lock_errors_in_any_task_log(scheduled):
    night, _ = scheduled
    logs = [p for p in night.airflow.logs.rglob("*") if p.is_file()]
    assert logs, "no task logs written"
    for path in logs:
        text = path.read_text(errors="replace")
        assert "Could not set lock" not in text, path
        assert "WarehouseLocked" not in text and "is locked by a writer" not in text, path
        assert "RunInProgress" not in text, path


def test_pool_serialises_warehouse_writers_while_other_tasks_run_in_parallel(scheduled):
    night, _ = scheduled
    rows = _query(
        night,
        "select task_id, pool, start_date, end_date from task_instance where dag_id = ? and start_date is not null",
        DAG_ID,
    )
    pooled = sorted((r[2], r[3], r[0]) for r in rows if r[1] == POOL)
    assert {t for *_, t in pooled} >= {"dbt_build", "quality_gate", "publish"}
    # the ingest tasks write separate lake partitions and hold the run lock shared: no pool
    assert not {t for *_, t in pooled} & {"ingest_crm", "ingest_billing", "ingest_usage"}
    for (_, end, first), (start, _, second) in itertools.pairwise(pooled):
        assert end <= start, f"{first} and {second} held the warehouse at the same time"
    events = sorted([(r[2], 1) for r in rows] + [(r[3], -1) for r in rows])
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    assert peak >= 2, "the LocalExecutor never ran two tasks at once"
