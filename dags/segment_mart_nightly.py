"""segment_mart_nightly: the nightly customer segment mart.

check_extracts -> ingest_<source> (one per source) -> check_quarantine -> dbt_build
-> quality_gate -> publish -> crm_writeback -> notify (the morning digest), plus the ``dbt`` task group (one task per dbt
model, seed and snapshot, with the dbt lineage) that shows each node's status.

The DAG only orchestrates: every task calls a function of ``pipelines.ops.nightly`` (the
same functions behind the ``segment-mart`` CLI), imported inside the task so that
parsing this file stays fast (no pandas, DuckDB, Great Expectations or dbt here).

Run date
    The calendar date (UTC) of the run's logical date. The schedule is a
    ``CronDataIntervalTimetable``: the run for day D covers [D 00:00, D+1 00:00) UTC,
    has logical date D 00:00 and starts once D is over, when D's drop is complete.
    ``airflow dags test segment_mart_nightly 2026-03-30`` processes the 2026-03-30 drop.
    Re-running (clearing) a date replaces that date's rows and re-publishes it.

Warehouse and raw lake
    Ingestion writes the raw lake only, so the ingest tasks run in parallel; every task that
    opens the working warehouse (dbt, gate, publish) runs in the one-slot pool
    ``segment_mart_warehouse``; dbt runs as ONE ``dbt build`` subprocess and the per-model tasks
    only read its run_results.json; every writing step takes the run lock
    (docs/operations.md, "One writer at a time").

Failures
    Classified by type only (``pipelines/errors.py``): a ``DataProblem`` (bad extracts,
    quarantine over threshold, a failing dbt test, a failed gate, a refused publish) fails the
    task at once, without retries; a ``Transient`` (the run lock or DuckDB's file lock held) and
    anything unexpected are retried. A failed night publishes nothing; the previous release
    stays byte-identical. The first failure of a run alerts with the cause and the command that
    fixes it, and the run summary (``<home>/runs/<date>.json``, ``pipelines/ops/run_summary.py``)
    records it, as the CLI's `run` does.

Configuration (environment, read when the file is parsed)
    SEGMENT_MART_SCHEDULE      cron expression or preset, default ``@daily``; ``none`` = manual only
    SEGMENT_MART_START_DATE    first logical date (YYYY-MM-DD), default 2026-01-01
    SEGMENT_MART_END_DATE      optional last logical date (YYYY-MM-DD)
    SEGMENT_MART_RETRIES       retries of transient failures, default 2
    SEGMENT_MART_RETRY_DELAY_SECONDS  default 300
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path
from typing import Any

from airflow.sdk import TaskGroup, chain, dag, task

from pipelines.contract import SOURCES
from pipelines.ops import airflow_tasks

DAG_ID = "segment_mart_nightly"
WAREHOUSE_POOL = "segment_mart_warehouse"
#: dbt's node list and lineage, cached from the dbt manifest (refresh:
#: ``python -m pipelines.ops.airflow_home dbt-nodes``; a DAG test fails when it is stale).
DBT_NODES_FILE = Path(__file__).with_name("dbt_nodes.json")

log = logging.getLogger(__name__)


def dbt_nodes() -> list[dict[str, Any]]:
    """Models, seeds and snapshots of the dbt project with their parents and tests."""
    return airflow_tasks.read_dbt_nodes(DBT_NODES_FILE)


def _run_date(context: dict[str, Any]) -> dt.date:
    """The run's as-of date: its logical date in UTC (run_after for runs without one)."""
    when = context.get("logical_date") or context["dag_run"].run_after
    return when.astimezone(dt.UTC).date()


def _settings():
    from pipelines.settings import get_settings

    return get_settings()


def _call(step, *args, **kwargs):
    """Run one pipeline step: a DataProblem fails the task without retries; a Transient (and
    anything unexpected) is raised as it is, so Airflow retries it."""
    from airflow.sdk.exceptions import AirflowFailException

    from pipelines.errors import DataProblem

    try:
        return step(*args, **kwargs)
    except DataProblem as exc:
        raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc


def on_task_failure(context: dict[str, Any]) -> None:
    """Log the failing task and its message; record the failed night in the run summary and
    alert its first failure."""
    ti, exc = context["ti"], context.get("exception")
    message = str(exc) if exc is not None else "(no exception recorded; see the task log)"
    run_date = _run_date(context)
    log.error("segment_mart_nightly FAILED for run date %s at task %s (try %s): %s",
              run_date, ti.task_id, ti.try_number, message)
    try:
        from pipelines.ops import nightly

        cause = exc.__cause__ if exc is not None and exc.__cause__ is not None else exc  # unwrap _call's
        path = nightly.night_failed(
            _settings(), run_date, run_id=context["run_id"], step=ti.task_id, error=message,
            error_type=type(cause).__name__ if cause is not None else "unknown", try_number=ti.try_number,
            dag_id=DAG_ID, extra_fix=(f"In Airflow: clear the failed task and what follows it: `airflow tasks clear "
                                      f"{DAG_ID} --task-regex '^{ti.task_id}$' --downstream --start-date {run_date} "
                                      f"--end-date {run_date} --yes`"))
        log.error("run summary: %s", path)
    except Exception:  # a callback must never mask the original failure
        log.exception("could not write the run summary")


default_args = {
    "owner": "segment-mart",
    "retries": int(os.environ.get("SEGMENT_MART_RETRIES", "2")),
    "retry_delay": dt.timedelta(seconds=int(os.environ.get("SEGMENT_MART_RETRY_DELAY_SECONDS", "300"))),
    "execution_timeout": dt.timedelta(hours=2),
    "on_failure_callback": on_task_failure,
}


@dag(
    dag_id=DAG_ID,
    schedule=airflow_tasks.schedule_from_env(),
    start_date=airflow_tasks.date_env("SEGMENT_MART_START_DATE", "2026-01-01"),
    end_date=airflow_tasks.date_env("SEGMENT_MART_END_DATE", None),
    catchup=True,
    max_active_runs=1,
    default_args=default_args,
    doc_md=__doc__,
    tags=["segment-mart", "dbt", "duckdb"],
    dagrun_timeout=dt.timedelta(hours=6),
)
def segment_mart_nightly():
    @task
    def check_extracts(**context) -> str:
        """Fail (naming every file and what to do) unless the night's drop is complete and the
        night is not older than the warehouse's latest (unless later nights are queued: a replay)."""
        from pipelines.ops import nightly
        from pipelines.ops.preflight import check_night_order

        settings, run_date = _settings(), _run_date(context)
        replaying = airflow_tasks.later_runs_queued(context, DAG_ID, settings, run_date)
        _call(check_night_order, settings, run_date, replaying=replaying)
        _call(nightly.check_extracts, settings, run_date)
        return str(settings.drop_dir(run_date))

    @task
    def ingest(source: str, **context) -> list[dict[str, Any]]:
        """Load one source of the night's drop into the raw lake (replaces the date's partitions)."""
        from dataclasses import asdict

        from pipelines.ops import nightly

        loads = _call(nightly.ingest, _settings(), _run_date(context), source)
        return [asdict(load) for load in loads]

    @task
    def check_quarantine(**context) -> dict[str, Any]:
        """Fail before dbt when an entity's quarantined share exceeds the threshold (or a snapshot is empty)."""
        from pipelines.ops import nightly

        return _call(nightly.check_quarantine, _settings(), _run_date(context)).summary()

    @task(pool=WAREHOUSE_POOL)
    def dbt_build(**context) -> str:
        """ONE `dbt build` (seeds, snapshots, models, tests) as a subprocess; fails on any failure."""
        from pipelines.ops import nightly

        # run_dbt removes the night's previous run_results first: node tasks never see stale ones.
        return _call(nightly.build, _settings(), _run_date(context))

    @task(trigger_rule="all_done")
    def dbt_node(unique_id: str, tests: list[str], **context) -> dict[str, Any]:
        """Status of one dbt node and its tests in this night's `dbt build` (run_results.json)."""
        return airflow_tasks.dbt_node_status(context, _settings(), _run_date(context), unique_id, tests)

    @task(pool=WAREHOUSE_POOL)
    def quality_gate(**context) -> dict[str, Any]:
        """Great Expectations suites, dbt results, freshness, quarantine; writes the quality report."""
        from pipelines.ops import nightly

        return _call(nightly.quality_gate, _settings(), _run_date(context)).summary()

    @task(pool=WAREHOUSE_POOL, outlets=airflow_tasks.published_assets(_settings(), dbt_nodes()))
    def publish(**context) -> dict[str, Any]:
        """Check the gate's fingerprint against the warehouse, then atomically publish the night's delta."""
        from pipelines.ops import nightly, run_summary

        return run_summary.release_summary(_call(nightly.publish, _settings(), _run_date(context)))

    @task
    def crm_writeback(published: dict[str, Any], **context) -> list[dict[str, Any]]:
        """Write the night's changed accounts to the configured CRMs (files; push when configured)."""
        from pipelines.ops import nightly

        return [r.summary() for r in _call(nightly.crm_writeback, _settings(), _run_date(context))]

    @task
    def notify(drop: str, loads: list[list[dict[str, Any]]], quarantine: dict[str, Any],
               gate: dict[str, Any], published: dict[str, Any], crm: list[dict[str, Any]], **context) -> str:
        """Log the night's summary, write it as JSON under the pipeline home and send the morning digest."""
        from pipelines.ops import nightly, run_summary

        settings, run_date = _settings(), _run_date(context)
        record = {"run_id": context["run_id"], "dag_id": DAG_ID, "drop": drop, "quarantine": quarantine, "gate": gate,
                  "loads": [load for source_loads in loads for load in source_loads], "published": published,
                  "crm": crm}
        path = run_summary.record_published(settings, run_date, **record)
        run_summary.record_published(settings, run_date, **record, digest=nightly.send_digest(settings, run_date))
        marts = ", ".join(f"{k} ({v['rows']} rows)" for k, v in published.get("marts", {}).items())
        log.info("segment mart for %s published (release %s): %s. Quality report: %s. Summary: %s",
                 run_date, published.get("release_id"), marts or "no marts", gate.get("report_html"), path)
        return str(path)

    drop = check_extracts()
    loads = [ingest.override(task_id=f"ingest_{source}")(source) for source in SOURCES]
    quarantine = check_quarantine()
    built = dbt_build()
    gate = quality_gate()
    published = publish()
    chain(drop, loads, quarantine, built, gate, published)
    notify(drop, loads, quarantine, gate, published, crm_writeback(published))

    # One task per dbt node, wired like dbt's lineage, showing what the single dbt build did.
    with TaskGroup("dbt", tooltip="Status of every dbt model, seed and snapshot in this night's build"):
        nodes = dbt_nodes()
        layers: dict[str, TaskGroup] = {}
        tasks = {}
        for node in nodes:
            layer = node["layer"]
            if layer not in layers:
                layers[layer] = TaskGroup(layer)
            with layers[layer]:
                tasks[node["unique_id"]] = dbt_node.override(
                    task_id=node["name"], doc_md=node.get("description") or None
                )(node["unique_id"], node["tests"])
        for node in nodes:
            parents = [tasks[p] for p in node["depends_on"] if p in tasks]
            for parent in parents or [built]:
                parent >> tasks[node["unique_id"]]


segment_mart_nightly()
