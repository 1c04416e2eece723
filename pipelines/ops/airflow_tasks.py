"""The Airflow side of the nightly DAG (``dags/segment_mart_nightly.py``), kept out of the DAG file.

What a task asks Airflow (the state of a sibling task, whether later runs are queued), the
schedule and dates read from the environment, the dbt node list the per-model tasks are drawn
from, and the verdict of a per-model task from dbt's run_results.json. Light to import (the DAG
file imports it while it is parsed): Airflow and the pipeline's heavy modules are imported inside
the functions.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def date_env(name: str, default: str | None) -> dt.datetime | None:
    """A date (YYYY-MM-DD) from the environment as midnight UTC, or None when unset or empty."""
    value = os.environ.get(name, default)
    if not value:
        return None
    return dt.datetime.combine(dt.date.fromisoformat(value), dt.time(), tzinfo=dt.UTC)


def schedule_from_env() -> Any:
    """``SEGMENT_MART_SCHEDULE`` as a timetable: daily data intervals in UTC by default."""
    from airflow.timetables.interval import CronDataIntervalTimetable

    expression = os.environ.get("SEGMENT_MART_SCHEDULE", "@daily").strip()
    if expression.lower() in ("", "none", "null", "manual"):
        return None
    return CronDataIntervalTimetable(expression, timezone="UTC")


def read_dbt_nodes(path: Path) -> list[dict[str, Any]]:
    """Models, seeds and snapshots of the dbt project with their parents and tests, from the
    cached node list (``python -m pipelines.ops.airflow_home dbt-nodes``); [] when there is none."""
    try:
        return json.loads(path.read_text())["nodes"]
    except FileNotFoundError:
        return []


def published_assets(settings, dbt_nodes: list[dict[str, Any]]) -> list[Any]:
    """One Airflow Asset per published mart, for downstream DAGs: the marts that have a quality
    suite (:func:`pipelines.release.asset_uris`); before any suite exists, the dbt project's marts."""
    from airflow.sdk import Asset

    from pipelines.release import asset_uris

    uris = asset_uris(settings) or asset_uris(settings, marts=[n["name"] for n in dbt_nodes if n["layer"] == "marts"])
    return [Asset(name=f"segment_mart.marts.{mart}", uri=uri, group="segment_mart") for mart, uri in sorted(uris.items())]


def task_state(context: dict[str, Any], task_id: str) -> str | None:
    """State of another task of this DAG run (None when Airflow cannot tell)."""
    try:
        states = context["ti"].get_task_states(
            dag_id=context["dag"].dag_id, task_ids=[task_id], run_ids=[context["run_id"]]
        )
    except Exception:
        log.warning("could not read the state of %s", task_id, exc_info=True)
        return None
    found = states.get(context["run_id"], states) if isinstance(states, dict) else {}
    state = found.get(task_id) if isinstance(found, dict) else None
    return str(getattr(state, "value", state)) if state is not None else None


def later_runs_queued(context: dict[str, Any], dag_id: str, settings, run_date: dt.date) -> bool:
    """True when runs of later nights are waiting (an operator cleared this night with 'Future'
    to replay it and every later one); then an older night is allowed to run."""
    from pipelines.ops.preflight import latest_night

    latest = latest_night(settings)
    if latest is None or latest <= run_date:
        return False
    later = [dt.datetime.combine(run_date + dt.timedelta(days=i), dt.time(), tzinfo=dt.UTC)
             for i in range(1, (latest - run_date).days + 1)]
    try:
        return context["ti"].get_dr_count(dag_id=dag_id, logical_dates=later, states=["queued", "running"]) > 0
    except Exception:
        log.warning("could not count the later runs of %s", dag_id, exc_info=True)
        return False


def dbt_node_status(context: dict[str, Any], settings, run_date: dt.date, unique_id: str,
                    tests: list[str]) -> dict[str, Any]:
    """Status of one dbt node and its tests in the night's `dbt build` (run_results.json): skips
    the task when dbt_build did not run or dbt skipped the node, fails it when dbt reported a
    failure of the node or of one of its tests."""
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    from pipelines.build.dbt import run_results_path
    from pipelines.build.dbt_results import RunResults

    build_state = task_state(context, "dbt_build")
    if build_state not in (None, "success", "failed"):
        raise AirflowSkipException(f"dbt_build did not run in this run (state: {build_state})")
    path = run_results_path(settings, run_date)
    if not path.exists():
        raise AirflowSkipException(f"no dbt run_results for this night ({path}): dbt_build did not run")
    run_results = RunResults.load(path)
    own = run_results.get(unique_id)
    if own is None:
        raise AirflowSkipException(f"{unique_id} was not part of this night's dbt build ({path})")
    checks = [r for r in (run_results.get(t) for t in tests) if r is not None]
    log.info("%s (%.2fs)", own.describe(), own.execution_time or 0)
    for check in checks:
        log.info("  test %s", check.describe())
    failed = [r for r in (own, *checks) if r.failed]
    if failed:
        raise AirflowFailException(
            "dbt reported failures for this node:\n" + "\n".join(f"  - {r.describe()}" for r in failed)
        )
    if own.skipped:
        raise AirflowSkipException(f"dbt skipped {unique_id} (an upstream node failed)")
    return {"status": own.status, "tests": {r.unique_id: r.status for r in checks}}
