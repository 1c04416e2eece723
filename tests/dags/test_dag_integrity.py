"""Integrity of the nightly DAG: it imports, has the right shape and settings, parses fast
and imports nothing heavy at the top level. No Airflow database needed."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.settings import PROJECT_ROOT

DAGS = PROJECT_ROOT / "dags"
DAG_FILE = DAGS / "segment_mart_nightly.py"
DAG_ID = "segment_mart_nightly"
POOL = "segment_mart_warehouse"
WAREHOUSE_TASKS = {"dbt_build", "quality_gate", "publish"}
#: Tasks that read or write the raw lake only: they run in parallel, outside the warehouse pool.
LAKE_TASKS = {"ingest_crm", "ingest_billing", "ingest_usage", "check_quarantine"}
HEAVY = ("pandas", "duckdb", "great_expectations", "dbt", "pyarrow", "numpy")


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    os.environ.setdefault("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow_home")))
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


@pytest.fixture(scope="module")
def dag(dagbag):
    assert dagbag.import_errors == {}, f"DAG import errors: {dagbag.import_errors}"
    return dagbag.dags[DAG_ID]


def test_dags_folder_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert DAG_ID in dagbag.dags


def test_main_task_order(dag):
    def downstream(task_id: str) -> set[str]:
        return set(dag.task_dict[task_id].downstream_task_ids)

    ingests = {"ingest_crm", "ingest_billing", "ingest_usage"}
    assert ingests <= downstream("check_extracts")
    for ingest in ingests:
        assert "check_quarantine" in downstream(ingest)
        assert not downstream(ingest) & ingests, "ingest tasks are parallel branches"
    assert "dbt_build" in downstream("check_quarantine")
    assert "quality_gate" in downstream("dbt_build")
    assert "publish" in downstream("quality_gate")
    assert "notify" in downstream("publish")
    assert "crm_writeback" in downstream("publish") and "notify" in downstream("crm_writeback")
    assert dag.task_dict["notify"].downstream_task_ids == set()


def test_dbt_models_are_tasks_wired_like_the_dbt_lineage(dag):
    nodes = json.loads((DAGS / "dbt_nodes.json").read_text())["nodes"]
    assert nodes, "dags/dbt_nodes.json lists no dbt nodes"
    by_id = {n["unique_id"]: f"dbt.{n['layer']}.{n['name']}" for n in nodes}
    for node in nodes:
        task = dag.task_dict[by_id[node["unique_id"]]]
        assert task.trigger_rule == "all_done", "node tasks report even after a failed build"
        expected = {by_id[p] for p in node["depends_on"] if p in by_id} or {"dbt_build"}
        assert task.upstream_task_ids == expected, node["unique_id"]
        assert not getattr(task, "pool", None) or task.pool != POOL, "node tasks never open the warehouse"
    marts = [n for n in nodes if n["layer"] == "marts"]
    assert marts, "the dbt project has marts"


def test_run_settings(dag):
    assert dag.max_active_runs == 1
    assert dag.catchup is True
    assert dag.start_date is not None and dag.start_date.tzinfo is not None
    for task in dag.tasks:
        assert task.retries >= 1, f"{task.task_id} has no retries"
        assert task.on_failure_callback, f"{task.task_id} has no failure callback"


def test_every_warehouse_task_is_in_the_one_slot_pool(dag):
    for task_id in WAREHOUSE_TASKS:
        assert dag.task_dict[task_id].pool == POOL, task_id
    assert dag.task_dict["check_extracts"].pool != POOL
    for task_id in LAKE_TASKS:
        assert dag.task_dict[task_id].pool != POOL, f"{task_id} never opens the warehouse"
    assert dag.task_dict["notify"].pool != POOL


def test_publish_outlets_are_the_published_marts(dag):
    from pipelines.release import asset_uris
    from pipelines.settings import get_settings

    uris = {a.uri for a in dag.task_dict["publish"].outlets}
    expected = set(asset_uris(get_settings()).values())
    if expected:
        assert uris == expected
    else:  # no quality suites yet: one Asset per dbt mart
        assert len(uris) >= 1
    assert all(u.startswith("file://") and "?table=marts." in u for u in uris)


def test_timetable_run_for_day_d_starts_after_d(dag):
    """Daily data intervals in UTC: logical date D 00:00, run after D is over."""
    from airflow.timetables.base import TimeRestriction

    start = dag.start_date
    info = dag.timetable.next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(earliest=start, latest=None, catchup=True),
    )
    assert info.logical_date == start
    assert info.data_interval.end - info.data_interval.start == dt.timedelta(days=1)
    assert info.run_after == start + dt.timedelta(days=1)


def test_run_date_is_the_logical_dates_utc_calendar_date():
    module = _load_dag_module()
    utc = dt.datetime(2026, 3, 30, tzinfo=dt.UTC)
    assert module._run_date({"logical_date": utc}) == dt.date(2026, 3, 30)
    new_york = dt.timezone(dt.timedelta(hours=-5))
    assert module._run_date({"logical_date": dt.datetime(2026, 3, 30, 21, 0, tzinfo=new_york)}) == dt.date(2026, 3, 31)


def test_data_errors_fail_without_retry_other_errors_retry():
    from airflow.sdk.exceptions import AirflowFailException

    from pipelines.intake.landing import SourceRejected
    from pipelines.warehouse import WarehouseLocked

    module = _load_dag_module()

    def rejected():
        raise SourceRejected("crm", dt.date(2026, 3, 30), [])

    def locked():
        raise WarehouseLocked("locked by another process")

    with pytest.raises(AirflowFailException, match="SourceRejected"):
        module._call(rejected)
    with pytest.raises(WarehouseLocked):
        module._call(locked)


def test_schedule_and_dates_come_from_the_environment():
    code = (
        "import importlib.util, sys; sys.path.insert(0, sys.argv[1]);"
        "spec = importlib.util.spec_from_file_location('m', sys.argv[2]); m = importlib.util.module_from_spec(spec);"
        "spec.loader.exec_module(m); d = m.segment_mart_nightly();"
        "print(d.schedule if d.schedule is None else type(d.timetable).__name__, d.start_date.date(), d.end_date.date() if d.end_date else None)"
    )
    env = os.environ | {"SEGMENT_MART_SCHEDULE": "none", "SEGMENT_MART_START_DATE": "2026-02-01", "SEGMENT_MART_END_DATE": "2026-02-05"}
    out = subprocess.run([sys.executable, "-c", code, str(PROJECT_ROOT), str(DAG_FILE)], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split()[-3:] == ["None", "2026-02-01", "2026-02-05"]
    env = os.environ | {"SEGMENT_MART_SCHEDULE": "0 3 * * *"}
    env.pop("SEGMENT_MART_START_DATE", None)
    out = subprocess.run([sys.executable, "-c", code, str(PROJECT_ROOT), str(DAG_FILE)], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split()[-3:-1] == ["CronDataIntervalTimetable", "2026-01-01"]


def test_no_heavy_imports_and_fast_parse(tmp_path):
    """Parse the DAG file in a fresh interpreter: no heavy module loaded, parse well under a bound."""
    code = f"""
import sys, time
import airflow.sdk  # Airflow itself is loaded by every parser anyway
from airflow.dag_processing.dagbag import DagBag
before = set(sys.modules)
t = time.perf_counter()
bag = DagBag(dag_folder={str(DAG_FILE)!r})
elapsed = time.perf_counter() - t
assert not bag.import_errors, bag.import_errors
heavy = sorted(m for m in set(sys.modules) - before if m.split('.')[0] in {HEAVY!r})
print("PARSE", elapsed, "HEAVY", ",".join(heavy) or "-")
"""
    env = os.environ | {"AIRFLOW_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=PROJECT_ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    line = next(x for x in out.stdout.splitlines() if x.startswith("PARSE"))
    _, elapsed, _, heavy = line.split()
    assert heavy == "-", f"the DAG file imports heavy modules at top level: {heavy}"
    # Measured ~0.1 s; a generous bound that only catches parse-time work (e.g. running dbt).
    assert float(elapsed) < 5.0, f"parsing the DAG took {float(elapsed):.1f}s"


def test_cached_dbt_node_list_matches_the_dbt_project():
    """dags/dbt_nodes.json drives the per-model tasks; it must match the dbt project."""
    from pipelines.ops.airflow_home import parse_dbt_nodes

    def shape(listing: dict) -> list[dict]:  # descriptions may lag; names, lineage and tests may not
        return [{k: v for k, v in n.items() if k != "description"} for n in listing["nodes"]]

    cached = json.loads((DAGS / "dbt_nodes.json").read_text())
    current = parse_dbt_nodes()
    assert shape(cached) == shape(current), (
        "dags/dbt_nodes.json is stale: run `python -m pipelines.ops.airflow_home dbt-nodes` and commit it"
    )


def _load_dag_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("segment_mart_nightly_under_test", DAG_FILE)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def test_airflow_home_env(tmp_path):
    from pipelines.ops.airflow_home import DAGS_FOLDER, WAREHOUSE_POOL, airflow_home
    from pipelines.settings import get_settings

    home = airflow_home(tmp_path / "airflow", settings=get_settings(home=tmp_path / "sm"))
    env = home.env()
    assert WAREHOUSE_POOL == POOL
    assert env["AIRFLOW_HOME"] == str(tmp_path / "airflow")
    assert Path(env["AIRFLOW__CORE__DAGS_FOLDER"]) == DAGS_FOLDER == DAGS
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("sqlite:///")
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
    assert env["SEGMENT_MART_HOME"] == str(tmp_path / "sm")
    assert home.env()["AIRFLOW__API_AUTH__JWT_SECRET"] == env["AIRFLOW__API_AUTH__JWT_SECRET"]
