"""segment_mart_nightly: the nightly customer segment mart.

check_extracts -> ingest_<source> (one per source) -> check_quarantine -> dbt_build
-> quality_gate -> publish -> crm_writeback -> notify (the morning digest), plus the ``dbt`` task group (one task per dbt
model, seed and snapshot, with the dbt lineage) that shows each node's status.

The DAG only orchestrates: every task calls a function of ``pipelines.nightly`` (the
same functions behind the ``segment-mart`` CLI), imported inside the task so that
parsing this file stays fast (no pandas, DuckDB, Great Expectations or dbt here).

Run date
    The calendar date (UTC) of the run's logical date. The schedule is a
    ``CronDataIntervalTimetable``: the run for day D covers [D 00:00, D+1 00:00) UTC,
    has logical date D 00:00 and starts once D is over, when D's drop is complete.
    ``airflow dags test segment_mart_nightly 2026-03-30`` processes the 2026-03-30 drop.
    Re-running (clearing) a date replaces that date's rows and re-publishes it.

Warehouse and raw lake
    Ingestion writes the raw lake (Parquet partitions per source and night), never the
    DuckDB warehouse, so the three ingest tasks run in parallel; the quarantine check reads
    the lake only. DuckDB admits one read-write process per file: every task that opens the
    working warehouse (dbt, gate, publish) runs in the one-slot pool ``segment_mart_warehouse``;
    dbt runs as ONE ``dbt build`` subprocess. The per-model tasks only read dbt's
    run_results.json. Every writing step also takes the pipeline home's run lock
    (``pipelines/run_lock.py``): a manual run next to the DAG fails at once, and the task
    that met it is retried.

Failures
    Data problems (missing or unreadable extracts, too many quarantined rows, a failing
    dbt test, a failed quality gate) fail the task at once, without retries: retrying
    cannot fix data. Anything else (e.g. a lock held by a manual CLI run) is retried.
    A failed night publishes nothing; the previous release stays byte-identical. The first
    failure of a run alerts (config/outbound.yml; docs/outbound.md) with the cause and the
    command that fixes it, as the CLI's `run` does.

Configuration (environment, read when the file is parsed)
    SEGMENT_MART_SCHEDULE      cron expression or preset, default ``@daily``; ``none`` = manual only
    SEGMENT_MART_START_DATE    first logical date (YYYY-MM-DD), default 2026-01-01
    SEGMENT_MART_END_DATE      optional last logical date (YYYY-MM-DD)
    SEGMENT_MART_RETRIES       retries of transient failures, default 2
    SEGMENT_MART_RETRY_DELAY_SECONDS  default 300
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from pathlib import Path
from typing import Any

from airflow.sdk import Asset, TaskGroup, chain, dag, task

from pipelines.contract import SOURCES

DAG_ID = "segment_mart_nightly"
WAREHOUSE_POOL = "segment_mart_warehouse"
#: dbt's node list and lineage, cached from the dbt manifest (refresh:
#: ``python -m pipelines.airflow_home dbt-nodes``; a DAG test fails when it is stale).
DBT_NODES_FILE = Path(__file__).with_name("dbt_nodes.json")
#: Exceptions that mean "the data is wrong": fail at once, never retry.
DATA_ERRORS = frozenset(
    {"SourceRejected", "QualityGateFailed", "DbtFailed", "SuiteError", "PublishRefused", "NightNotReady",
     "NightOutOfOrder", "CrmSyncRefused", "OutboundConfigError"}
)

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- configuration


def _date_env(name: str, default: str | None) -> dt.datetime | None:
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


def published_assets() -> list[Asset]:
    """One Asset per published mart (URIs from the publish module), for downstream DAGs."""
    from pipelines.release import asset_uris
    from pipelines.settings import get_settings

    settings = get_settings()
    # The publish module lists the marts that have a quality suite; before any suite
    # exists, fall back to the marts of the dbt project.
    uris = asset_uris(settings) or asset_uris(
        settings, marts=[n["name"] for n in dbt_nodes() if n["layer"] == "marts"]
    )
    return [
        Asset(name=f"segment_mart.marts.{mart}", uri=uri, group="segment_mart")
        for mart, uri in sorted(uris.items())
    ]


def dbt_nodes() -> list[dict[str, Any]]:
    """Models, seeds and snapshots of the dbt project with their parents and tests."""
    try:
        return json.loads(DBT_NODES_FILE.read_text())["nodes"]
    except FileNotFoundError:
        return []


# --------------------------------------------------------------------------- task helpers


def _run_date(context: dict[str, Any]) -> dt.date:
    """The run's as-of date: its logical date in UTC (run_after for runs without one)."""
    when = context.get("logical_date") or context["dag_run"].run_after
    return when.astimezone(dt.UTC).date()


def _settings():
    from pipelines.settings import get_settings

    return get_settings()


def _call(step, *args, **kwargs):
    """Run one pipeline step; data errors fail the task without retries."""
    from airflow.sdk.exceptions import AirflowFailException

    try:
        return step(*args, **kwargs)
    except Exception as exc:
        name = type(exc).__name__
        transient = "lock" in str(exc).lower() and name == "DbtFailed"
        if name in DATA_ERRORS and not transient:
            raise AirflowFailException(f"{name}: {exc}") from exc
        raise


def _summary_path(settings, run_date: dt.date) -> Path:
    return settings.home / "runs" / f"{run_date.isoformat()}.json"


def _write_summary(settings, run_date: dt.date, summary: dict[str, Any]) -> Path:
    path = _summary_path(settings, run_date)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    tmp.replace(path)
    return path


def on_task_failure(context: dict[str, Any]) -> None:
    """Log the failing task and its message; record the failed night in the run summary."""
    ti = context["ti"]
    exc = context.get("exception")
    message = str(exc) if exc is not None else "(no exception recorded; see the task log)"
    run_date = _run_date(context)
    log.error(
        "segment_mart_nightly FAILED for run date %s at task %s (try %s): %s",
        run_date, ti.task_id, ti.try_number, message,
    )
    try:
        settings = _settings()
        path = _summary_path(settings, run_date)
        previous = json.loads(path.read_text()) if path.exists() else {}
        if previous.get("run_id") == context["run_id"] and previous.get("status") == "failed":
            # The first failure is the cause; later ones (e.g. a dbt model's status task
            # after dbt_build failed) are listed, not put in front.
            previous.setdefault("also_failed", []).append({"task": ti.task_id, "error": message})
            summary = previous
        else:
            from pipelines import nightly

            # data errors reach the callback wrapped in AirflowFailException("<type>: <message>")
            head = message.split(":", 1)[0]
            error_type = head if head in DATA_ERRORS else (type(exc).__name__ if exc is not None else "unknown")
            nightly.alert_failure(
                settings, run_date, ti.task_id, message, error_type=error_type,
                extra_fix=(f"In Airflow: clear the failed task and what follows it: `airflow tasks clear {DAG_ID} "
                           f"--task-regex '^{ti.task_id}$' --downstream --start-date {run_date} --end-date {run_date} "
                           "--yes`"))
            summary = {
                "dag_id": DAG_ID,
                "run_id": context["run_id"],
                "run_date": run_date.isoformat(),
                "status": "failed",
                "failed_task": ti.task_id,
                "try_number": ti.try_number,
                "error": message,
                "published_unchanged": str(settings.published),
                "written_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            }
        log.error("run summary: %s", _write_summary(settings, run_date, summary))
    except Exception:  # a callback must never mask the original failure
        log.exception("could not write the run summary")


def _task_state(context: dict[str, Any], task_id: str) -> str | None:
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


def _later_runs_queued(context: dict[str, Any], settings, run_date: dt.date) -> bool:
    """True when runs of later nights are waiting (an operator cleared this night with 'Future'
    to replay it and every later one); then an older night is allowed to run."""
    from pipelines.preflight import latest_night

    latest = latest_night(settings)
    if latest is None or latest <= run_date:
        return False
    later = [dt.datetime.combine(run_date + dt.timedelta(days=i), dt.time(), tzinfo=dt.UTC)
             for i in range(1, (latest - run_date).days + 1)]
    try:
        return context["ti"].get_dr_count(dag_id=DAG_ID, logical_dates=later, states=["queued", "running"]) > 0
    except Exception:
        log.warning("could not count the later runs of %s", DAG_ID, exc_info=True)
        return False


# --------------------------------------------------------------------------- the DAG

default_args = {
    "owner": "segment-mart",
    "retries": int(os.environ.get("SEGMENT_MART_RETRIES", "2")),
    "retry_delay": dt.timedelta(seconds=int(os.environ.get("SEGMENT_MART_RETRY_DELAY_SECONDS", "300"))),
    "execution_timeout": dt.timedelta(hours=2),
    "on_failure_callback": on_task_failure,
}


@dag(
    dag_id=DAG_ID,
    schedule=schedule_from_env(),
    start_date=_date_env("SEGMENT_MART_START_DATE", "2026-01-01"),
    end_date=_date_env("SEGMENT_MART_END_DATE", None),
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
        from pipelines import nightly
        from pipelines.preflight import check_night_order

        settings, run_date = _settings(), _run_date(context)
        _call(check_night_order, settings, run_date, replaying=_later_runs_queued(context, settings, run_date))
        _call(nightly.check_extracts, settings, run_date)
        return str(settings.drop_dir(run_date))

    @task
    def ingest(source: str, **context) -> list[dict[str, Any]]:
        """Load one source of the night's drop into the raw lake (replaces the date's partitions)."""
        from dataclasses import asdict

        from pipelines import nightly

        loads = _call(nightly.ingest, _settings(), _run_date(context), source)
        return [asdict(load) for load in loads]

    @task
    def check_quarantine(**context) -> dict[str, Any]:
        """Fail before dbt when an entity's quarantined share exceeds the threshold (or a snapshot is empty)."""
        from pipelines import nightly

        return _call(nightly.check_quarantine, _settings(), _run_date(context)).summary()

    @task(pool=WAREHOUSE_POOL)
    def dbt_build(**context) -> str:
        """ONE `dbt build` (seeds, snapshots, models, tests) as a subprocess; fails on any failure."""
        from pipelines import nightly

        # run_dbt removes the night's previous run_results first: node tasks never see stale ones.
        return _call(nightly.build, _settings(), _run_date(context))

    @task(trigger_rule="all_done")
    def dbt_node(unique_id: str, tests: list[str], **context) -> dict[str, Any]:
        """Status of one dbt node and its tests in this night's `dbt build` (run_results.json)."""
        from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

        from pipelines.dbt import run_results_path
        from pipelines.dbt_results import RunResults

        build_state = _task_state(context, "dbt_build")
        if build_state not in (None, "success", "failed"):
            raise AirflowSkipException(f"dbt_build did not run in this run (state: {build_state})")
        path = run_results_path(_settings(), _run_date(context))
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

    @task(pool=WAREHOUSE_POOL)
    def quality_gate(**context) -> dict[str, Any]:
        """Great Expectations suites, dbt results, freshness, quarantine; writes the quality report."""
        from pipelines import nightly

        return _call(nightly.quality_gate, _settings(), _run_date(context)).summary()

    @task(pool=WAREHOUSE_POOL, outlets=published_assets())
    def publish(**context) -> dict[str, Any]:
        """Check the gate's fingerprint against the warehouse, then atomically publish the night's delta."""
        from pipelines import nightly

        manifest = _call(nightly.publish, _settings(), _run_date(context))
        return {
            "run_date": manifest.run_date.isoformat(),
            "release_id": manifest.release_id,
            "dataset_checksum": manifest.dataset_checksum,
            "marts": {name: {"rows": m.rows, "checksum": m.checksum} for name, m in manifest.marts.items()},
        }

    @task
    def crm_writeback(published: dict[str, Any], **context) -> list[dict[str, Any]]:
        """Write the night's changed accounts to the configured CRMs (files; push when configured)."""
        from pipelines import nightly

        return [r.summary() for r in _call(nightly.crm_writeback, _settings(), _run_date(context))]

    @task
    def notify(drop: str, loads: list[list[dict[str, Any]]], quarantine: dict[str, Any],
               gate: dict[str, Any], published: dict[str, Any], crm: list[dict[str, Any]], **context) -> str:
        """Log the night's summary, write it as JSON under the pipeline home and send the morning digest."""
        from pipelines import nightly
        from pipelines.release import published_db_path

        settings, run_date = _settings(), _run_date(context)
        flat = [load for source_loads in loads for load in source_loads]
        summary = {
            "dag_id": DAG_ID,
            "run_id": context["run_id"],
            "run_date": run_date.isoformat(),
            "status": "published",
            "drop": drop,
            "ingested": {
                f"{x['source']}/{x['entity']}": {k: x[k] for k in ("rows_read", "rows_loaded", "rows_quarantined")}
                for x in flat
            },
            "quarantine": quarantine.get("counts"),
            "quality_gate": {k: gate.get(k) for k in ("counts", "warnings", "report_html", "report_json")},
            "published": published,
            "crm_writeback": crm,
            "paths": {
                "duckdb": str(published_db_path(settings)),
                "parquet": str(settings.published / "parquet"),
                "manifest": str(settings.published / "manifest.json"),
                "report": str(settings.published / "report.html"),
                "quality_report": gate.get("report_html"),
            },
            "written_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        path = _write_summary(settings, run_date, summary)
        summary["digest"] = nightly.send_digest(settings, run_date)
        _write_summary(settings, run_date, summary)
        marts = ", ".join(f"{k} ({v['rows']} rows)" for k, v in published.get("marts", {}).items())
        log.info(
            "segment mart for %s published (release %s): %s. Quality report: %s. Summary: %s",
            run_date, published.get("release_id"), marts or "no marts", gate.get("report_html"), path,
        )
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
