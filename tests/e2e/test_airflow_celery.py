"""The nightly DAG on Airflow as teams deploy it: a PostgreSQL metadata database, the
CeleryExecutor with a Redis broker and two Celery workers, each component a process of its own
(``pipelines.ops.airflow_services``), from Debian's postgresql and redis-server.

The DAG is unpaused with start = the first drop and end = the second: the scheduler creates
both runs by itself and runs them in order (``max_active_runs=1``). While night 1 starts, the
test holds the pipeline home's run lock, as a manual ``segment-mart run`` next to the DAG would:
the tasks that meet it fail with ``RunInProgress``, which the DAG retries (here after 5 s, one
retry: ``SEGMENT_MART_RETRIES`` / ``SEGMENT_MART_RETRY_DELAY_SECONDS``); the lock is released once
a task waits for its retry, and both nights must then succeed. Task logs must be readable through
the API server, as the UI reads them, for both tries of a retried task.

What this test proves is the deployment (scheduling, Celery, the retry, the logs), not the dbt
project, so its nights are cheap: the DAG file is the shipped one, in a dags folder of the test's
own whose dbt_nodes.json lists two of the dbt nodes (each node's status task is a Celery task
process of its own: 72 a night otherwise; every node's task runs in tests/e2e/
test_nightly_dags_test.py), and the nights' dbt build leaves the data tests out
(``SEGMENT_MART_DBT_BUILD_EXCLUDE``, docs/configuration.md; the gate warns and passes).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipelines.ops import run_lock
from pipelines.ops.airflow_services import CeleryAirflow, celery_airflow
from pipelines.settings import Settings, get_settings
from tests.e2e.conftest import ACCOUNTS, DAYS, PROJECT_EXPECTATIONS, SEED, START
from tests.listening import descendants, listening_addresses

pytestmark = pytest.mark.e2e

DAG_ID = "segment_mart_nightly"
RUN_TIMEOUT_SECONDS = 1500
INGEST_TASKS = ("ingest_crm", "ingest_billing", "ingest_usage")
DAGS = Path(__file__).resolve().parents[2] / "dags"
#: The dbt nodes whose status tasks the test's DAG shows (a parent and its child).
NODES = ("model.segment_mart.stg_crm__accounts", "model.segment_mart.dim_accounts")


def _dags_folder(folder: Path) -> Path:
    """The shipped DAG file with a dbt node list of :data:`NODES` only."""
    folder.mkdir()
    shutil.copyfile(DAGS / f"{DAG_ID}.py", folder / f"{DAG_ID}.py")
    listing = json.loads((DAGS / "dbt_nodes.json").read_text())
    listing["nodes"] = [n for n in listing["nodes"] if n["unique_id"] in NODES]
    assert len(listing["nodes"]) == len(NODES), "a node of NODES is not in dags/dbt_nodes.json"
    (folder / "dbt_nodes.json").write_text(json.dumps(listing))
    return folder


@dataclass
class CeleryNights:
    settings: Settings
    airflow: CeleryAirflow
    drops: list[dt.date]
    retried_while_locked: list[str]
    root: Path

    def query(self, sql: str, *args) -> list[tuple]:
        import psycopg2

        con = psycopg2.connect(host="127.0.0.1", port=self.airflow.postgres.port, user="airflow", dbname="airflow")
        try:
            with con.cursor() as cur:
                cur.execute(sql, args)
                return cur.fetchall()
        finally:
            con.close()


@pytest.fixture(scope="module")
def celery_nights(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CeleryNights]:
    from pipelines.lab.generate import generate

    root = tmp_path_factory.mktemp("e2e_celery")
    expectations = root / "expectations"
    shutil.copytree(PROJECT_EXPECTATIONS, expectations)
    settings = get_settings(home=root / "home", expectations_dir=expectations)
    summary = generate(settings.landing, accounts=ACCOUNTS, start_date=START, days=DAYS, drop_days=2, seed=SEED)
    drops = [dt.date.fromisoformat(str(d)) for d in summary.run_dates]
    env = {
        "SEGMENT_MART_HOME": str(settings.home), "SEGMENT_MART_EXPECTATIONS_DIR": str(expectations),
        "SEGMENT_MART_START_DATE": drops[0].isoformat(), "SEGMENT_MART_END_DATE": drops[-1].isoformat(),
        "SEGMENT_MART_RETRIES": "1", "SEGMENT_MART_RETRY_DELAY_SECONDS": "5",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "600",
        "AIRFLOW__CORE__DAGS_FOLDER": str(_dags_folder(root / "dags")),
        "SEGMENT_MART_DBT_BUILD_EXCLUDE": "resource_type:test",
    }
    # PostgreSQL runs as user `postgres` when the tests run as root: its folder must be
    # reachable by that user, which pytest's private temporary folders are not
    pg_root = Path(tempfile.mkdtemp(prefix="segment-mart-pg-"))
    pg_root.chmod(0o755)
    airflow = celery_airflow(root / "airflow", settings, extra_env=env, celery_workers=2)
    airflow.postgres.folder = pg_root / "postgres"
    try:
        airflow.start()
        nights = CeleryNights(settings, airflow, drops, [], root)
        with run_lock.exclusive(settings.home, drops[0], "manual run next to the DAG"):
            _unpause_when_registered(nights)
            nights.retried_while_locked = _wait_for_retry(nights)
        _wait_for_runs(nights)
        yield nights
    finally:
        airflow.stop()
        shutil.rmtree(pg_root, ignore_errors=True)


def _deadline_check(nights: CeleryNights, deadline: float, what: str) -> None:
    dead = [n for n, p in nights.airflow.components.items() if p.poll() is not None]
    if dead:
        raise AssertionError(f"Airflow components exited: {dead}; logs in {nights.airflow.home.path / 'components'}")
    if time.monotonic() > deadline:
        raise AssertionError(f"{what} did not happen in {RUN_TIMEOUT_SECONDS}s; see {nights.root}")


def _unpause_when_registered(nights: CeleryNights) -> None:
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    while not nights.query("select dag_id from dag where dag_id = %s", DAG_ID):
        _deadline_check(nights, deadline, "the DAG's registration")
        time.sleep(2)
    nights.airflow.home.airflow("dags", "unpause", DAG_ID, capture=True)


def _wait_for_retry(nights: CeleryNights) -> list[str]:
    """Task ids of night 1 waiting for their retry (they met the lock)."""
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    while True:
        rows = nights.query("select task_id from task_instance where dag_id = %s and state = 'up_for_retry'", DAG_ID)
        if rows:
            return sorted(r[0] for r in rows)
        failed = nights.query("select task_id from task_instance where dag_id = %s and state = 'failed'", DAG_ID)
        assert not failed, f"tasks failed without a retry: {failed}"
        _deadline_check(nights, deadline, "a retry")
        time.sleep(2)


def _wait_for_runs(nights: CeleryNights) -> None:
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    while True:
        states = [r[0] for r in nights.query("select state from dag_run where dag_id = %s", DAG_ID)]
        if len(states) == len(nights.drops) and all(s in ("success", "failed") for s in states):
            return
        if "failed" in states:
            return
        _deadline_check(nights, deadline, "both scheduled runs")
        time.sleep(5)


def test_the_scheduler_ran_both_nights_on_celery(celery_nights: CeleryNights) -> None:
    runs = celery_nights.query(
        "select run_type, logical_date, state from dag_run where dag_id = %s order by logical_date", DAG_ID)
    not_ok = celery_nights.query(
        "select run_id, task_id, state from task_instance where dag_id = %s and state not in ('success', 'skipped')",
        DAG_ID)
    assert [(r[0], r[1].date(), r[2]) for r in runs] == [
        ("scheduled", d, "success") for d in celery_nights.drops], (runs, not_ok)
    assert json.loads((celery_nights.settings.published / "manifest.json").read_text())["run_date"] == (
        celery_nights.drops[-1].isoformat())
    # the tasks went through Celery: each one that ran has a result in the result backend
    # (PostgreSQL), and no SQLite metadata database was created
    ran = celery_nights.query("select count(*) from task_instance where dag_id = %s and state = 'success'",
                              DAG_ID)[0][0]
    results = celery_nights.query("select count(*) from celery_taskmeta")[0][0]
    assert results >= ran > 0
    # the dbt task group's status tasks ran too, each night
    nodes = celery_nights.query(
        "select task_id, count(*) from task_instance where dag_id = %s and task_id like 'dbt.%%' "
        "and state = 'success' group by task_id", DAG_ID)
    assert sorted(nodes) == [("dbt.marts.dim_accounts", 2), ("dbt.staging.stg_crm__accounts", 2)], nodes
    assert not (celery_nights.airflow.home.path / "airflow.db").exists()


def test_a_task_that_met_the_lock_was_retried_and_succeeded(celery_nights: CeleryNights) -> None:
    assert set(celery_nights.retried_while_locked) <= set(INGEST_TASKS), celery_nights.retried_while_locked
    rows = celery_nights.query(
        "select ti.task_id, ti.try_number, ti.state from task_instance ti join dag_run r "
        "on r.dag_id = ti.dag_id and r.run_id = ti.run_id where ti.dag_id = %s and r.logical_date::date = %s",
        DAG_ID, celery_nights.drops[0])
    tries = {task: (n, state) for task, n, state in rows}
    for task in celery_nights.retried_while_locked:
        assert tries[task] == (2, "success"), (task, tries[task])
    # the DAG retries a transient failure once here (SEGMENT_MART_RETRIES=1), nothing more
    assert max(n for n, _ in tries.values()) == 2


def test_task_logs_are_visible_through_the_api_server(celery_nights: CeleryNights) -> None:
    """Both tries of a retried task, as the UI shows them: the first met the lock
    (RunInProgress), the second loaded the source."""
    task = celery_nights.retried_while_locked[0]
    run_id = celery_nights.query(
        "select run_id from dag_run where dag_id = %s order by logical_date limit 1", DAG_ID)[0][0]
    first, second = (_task_log(celery_nights, run_id, task, n) for n in (1, 2))
    assert "RunInProgress" in first, first[-2000:]
    assert "RunInProgress" not in second and "loaded" in second, second[-2000:]


def _task_log(nights: CeleryNights, run_id: str, task: str, try_number: int) -> str:
    base = f"http://127.0.0.1:{nights.airflow.home.api_port}"
    with urllib.request.urlopen(urllib.request.Request(f"{base}/auth/token", method="GET"), timeout=30) as r:
        token = json.loads(r.read())["access_token"]
    url = (f"{base}/api/v2/dags/{DAG_ID}/dagRuns/{urllib.request.quote(run_id, safe='')}"
           f"/taskInstances/{task}/logs/{try_number}?full_content=true")
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as r:
        body = json.loads(r.read())
    content = body.get("content")
    if isinstance(content, list):
        return "\n".join(json.dumps(c) if not isinstance(c, str) else c for c in content)
    return str(content)


def test_every_component_listens_on_loopback_only(celery_nights: CeleryNights) -> None:
    """PostgreSQL, Redis, the API server, the scheduler, the dag processor and the Celery
    workers (with every process they started): every listening socket is on 127.0.0.1."""
    airflow = celery_nights.airflow
    postmaster = int((airflow.postgres.data / "postmaster.pid").read_text().split()[0])
    roots = [postmaster, airflow.redis.proc.pid, *(p.pid for p in airflow.components.values())]
    pids = set().union(*(descendants(pid) for pid in roots))
    listening = listening_addresses(pids)
    ports = {port for _, port in listening}
    assert {airflow.postgres.port, airflow.redis.port, airflow.home.api_port} <= ports, listening
    assert {address for address, _ in listening} == {"127.0.0.1"}, listening
