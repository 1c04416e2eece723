"""The steps of one night, in order. The CLI and the Airflow DAG both call these.

check_extracts -> ingest (per source) -> check_quarantine -> build (dbt) -> quality gate -> publish.
Each step is keyed on the run date and idempotent: re-running a date replaces.

Every step that writes takes the pipeline home's run lock (``pipelines/ops/run_lock.py``): ingest
shares it with the other sources' ingests (they write separate lake partitions), dbt, the
gate, publish and a whole night hold it alone. A second writer fails at once with
``RunInProgress`` ("another run of this night is in progress (pid N)").
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

from pipelines.build.dbt import DbtSession, dbt_session, run_dbt, run_results_path
from pipelines.build.engine import check_engine
from pipelines.contract import SOURCES, entities_of
from pipelines.intake.ingest import EntityLoad, ingest_source
from pipelines.intake.ingest import ingest as ingest_all
from pipelines.intake.landing import SourceRejected, check_drop
from pipelines.ops import run_lock
from pipelines.ops.run_lock import RunInProgress
from pipelines.settings import Settings

__all__ = ["DbtSession", "RunInProgress", "alert_failure", "build", "check_extracts", "check_quarantine",
           "crm_writeback", "dbt_session", "ingest", "ingest_sources", "night_failed", "publish", "quality_gate",
           "replay_nights", "run_night", "send_digest"]

log = logging.getLogger(__name__)


def check_extracts(settings: Settings, run_date: dt.date, sources: Iterable[str] = SOURCES) -> None:
    """Fail (naming every file and what to do) unless the night's drop is complete and readable,
    and (first of all, so a night never ingests for nothing) unless its engine can run here."""
    from pipelines.intake.mapping import active_mappings

    check_engine(settings)
    problems = check_drop(settings.drop_dir(run_date), tuple(sources), settings.in_use, active_mappings(settings))
    bad = {s: p for s, p in problems.items() if p}
    if bad:
        raise SourceRejected(",".join(bad), run_date, [p for ps in bad.values() for p in ps])
    log.info("drop %s is complete: %s", settings.drop_dir(run_date), ", ".join(problems))


def ingest(settings: Settings, run_date: dt.date, source: str) -> list[EntityLoad]:
    """Load one source of the night's drop into the raw lake (replaces the date's partitions)."""
    entities_of(source)  # validates the name
    with run_lock.ingesting(settings.home, run_date, source):
        return ingest_source(settings, run_date, source)


def ingest_sources(settings: Settings, run_date: dt.date, sources: Iterable[str] = SOURCES) -> list[EntityLoad]:
    """Ingest several sources, each under the run lock; every source is tried, then all
    rejections are raised together (:func:`pipelines.intake.ingest.ingest`)."""
    return ingest_all(settings, run_date, sources, load=ingest)


def check_quarantine(settings: Settings, run_date: dt.date):
    """Fail (QualityGateFailed naming the source and its share) when a source's quarantined share
    exceeds the threshold; run right after ingestion so a bad drop stops before dbt. The full
    quality gate checks the same again. Writes <quality>/<run_date>/quarantine_report.{json,html}.
    """
    from pipelines.quality import check_quarantine as check

    return check(settings, run_date).raise_if_failed()


#: dbt's unit tests prove the rules on fixed inputs: the same answer every night, so they run in
#: `make test` (tests/dbt/test_unit_tests.py) and never in a production night.
NIGHT_EXCLUDED_RESOURCE_TYPES = ("unit_test",)


def build(settings: Settings, run_date: dt.date, dbt: DbtSession | None = None) -> str:
    """dbt build (seeds, models, data tests; no unit tests, less setting ``dbt_build_exclude``) for
    the as-of date; returns run_results path. ``dbt``: the dbt process of a run of nights
    (:func:`dbt_session`), else dbt runs as a process of its own.

    Refuses at once (NightNotReady, naming the command to run) when the night is not ingested.
    """
    from pipelines.ops.preflight import require_raw_data

    with run_lock.exclusive(settings.home, run_date, "build"):
        require_raw_data(settings, run_date)
        exclude = settings.dbt_build_exclude.split() if settings.dbt_build_exclude else []
        return str(run_dbt(settings, run_date, "build", *night_selection(),
                           *(["--exclude", *exclude] if exclude else []), session=dbt))


def night_selection() -> list[str]:
    """What a night's `dbt build` leaves out by kind (dbt's --exclude-resource-type)."""
    return [arg for kind in NIGHT_EXCLUDED_RESOURCE_TYPES for arg in ("--exclude-resource-type", kind)]


def quality_gate(settings: Settings, run_date: dt.date):
    """Run the quality gate; raises QualityGateFailed (report paths in the message) when it fails."""
    from pipelines.quality import QualityGateFailed, run_quality_gate

    # Always the night's path: a build that left no results fails the gate, never skips it.
    with run_lock.exclusive(settings.home, run_date, "quality_gate"):
        gate = run_quality_gate(settings, run_date, dbt_run_results=run_results_path(settings, run_date))
    if not gate.passed:
        raise QualityGateFailed(gate)
    return gate


def publish(settings: Settings, run_date: dt.date, gate=None):
    """Write-audit-publish the marts the night's quality gate passed. The gate is not run again:
    its recorded result (``gate``, else the night's quality_report.json) must be a pass whose
    fingerprint still matches the warehouse, or the publish refuses and names what to run."""
    from pipelines.quality.gate import read_gate_result
    from pipelines.release.publish import PublishRefused
    from pipelines.release.publish import publish as publish_marts

    if gate is None:
        gate = read_gate_result(settings, run_date)
    if gate is None:
        raise PublishRefused(
            f"no quality gate result for {run_date} under {settings.quality / run_date.isoformat()}: "
            f"run the gate first (`segment-mart audit --run-date {run_date}`), then publish")
    with run_lock.exclusive(settings.home, run_date, "publish"):
        return publish_marts(settings, run_date, gate)


def run_night(settings: Settings, run_date: dt.date, sources: Iterable[str] = SOURCES,
              dbt: DbtSession | None = None):
    """Every step of one night in one process (the CLI's `run`). An out-of-order night is refused
    at once (NightOutOfOrder names the replay command). A run of nights passes its ``dbt``
    session (:func:`dbt_session`) so that dbt starts and loads the project once for all. Writes
    the night's run summary (:mod:`pipelines.ops.run_summary`), as the DAG does."""
    from dataclasses import asdict

    from pipelines.ops import run_summary
    from pipelines.ops.preflight import check_night_order

    sources = tuple(sources)
    run_id = f"cli__{dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%S.%fZ}"
    step = "run"
    loads: list[EntityLoad] = []
    try:
        with run_lock.exclusive(settings.home, run_date, "run"):
            step = "check_extracts"
            check_night_order(settings, run_date)
            check_extracts(settings, run_date, sources)
            for source in sources:
                step = f"ingest_{source}"
                loads.extend(ingest(settings, run_date, source))
            step = "check_quarantine"
            quarantine = check_quarantine(settings, run_date)
            step = "dbt_build"
            build(settings, run_date, dbt)
            step = "quality_gate"
            gate = quality_gate(settings, run_date)
            step = "publish"
            manifest = publish(settings, run_date, gate)
        step = "crm_writeback"
        crm = crm_writeback(settings, run_date)
    except Exception as exc:
        night_failed(settings, run_date, run_id=run_id, step=step, error=f"{type(exc).__name__}: {exc}",
                     error_type=type(exc).__name__)
        raise
    record = {"run_id": run_id, "drop": str(settings.drop_dir(run_date)), "loads": [asdict(x) for x in loads],
              "quarantine": quarantine.summary(), "gate": gate.summary(),
              "published": run_summary.release_summary(manifest), "crm": [r.summary() for r in crm]}
    run_summary.record_published(settings, run_date, **record)
    run_summary.record_published(settings, run_date, **record, digest=send_digest(settings, run_date))
    return manifest


def replay_nights(settings: Settings, run_dates: Iterable[dt.date], progress=log.info):
    """Restate a night: rebuild it and every later one in order, then publish the last.

    The nights before the last are ingested and built only (publishing them would go back in
    time); the last is gated and published. Returns its manifest. One dbt process builds every
    night (:func:`dbt_session`).
    """
    dates = sorted(run_dates)
    with dbt_session(settings) as dbt:
        for i, run_date in enumerate(dates, 1):
            progress(f"replay night {i} of {len(dates)}: {run_date}")
            with run_lock.exclusive(settings.home, run_date, "replay"):
                check_extracts(settings, run_date)
                for source in SOURCES:
                    ingest(settings, run_date, source)
                check_quarantine(settings, run_date)
                build(settings, run_date, dbt)
    return publish(settings, dates[-1], quality_gate(settings, dates[-1]))


# --------------------------------------------------------------------------- after the publish (issue 21)


def crm_writeback(settings: Settings, run_date: dt.date, mode: str | None = None):
    """Write the night's changed accounts to the configured CRMs (config/outbound.yml; files, or a
    push through the vendors' clients); returns one summary per CRM. docs/outbound.md."""
    from pipelines.outbound.crm import crm_sync

    # the run lock: two write-backs of a night at once could both send what neither has recorded yet
    with run_lock.exclusive(settings.home, run_date, "crm_writeback"):
        return crm_sync(settings, run_date, mode=mode)


def send_digest(settings: Settings, run_date: dt.date) -> str:
    """The morning digest of a published night (status, new high-priority actions per owner, CRM
    write-back); never fails the night: a channel that cannot be reached is logged."""
    from pipelines.outbound.alerts import digest, send

    try:
        return send(settings, digest(settings, run_date))
    except Exception:
        log.exception("the morning digest for %s was not sent", run_date)
        return "failed"


def night_failed(settings: Settings, run_date: dt.date, *, run_id: str, step: str, error: str, error_type: str,
                 try_number: int | None = None, dag_id: str | None = None, extra_fix: str | None = None):
    """A step of the night failed: record it in the run summary and, when it is the run's first
    failure (the cause), alert it. The CLI's `run` and the DAG's failure callback both call this.
    Returns the run summary's path."""
    from pipelines.ops import run_summary

    path, first = run_summary.record_failure(settings, run_date, run_id=run_id, step=step, error=error,
                                             try_number=try_number, dag_id=dag_id)
    if first:
        alert_failure(settings, run_date, step, error, error_type=error_type, extra_fix=extra_fix)
    return path


def alert_failure(settings: Settings, run_date: dt.date, step: str, exc: BaseException | str,
                  error_type: str | None = None, extra_fix: str | None = None) -> str:
    """Alert a failed night: the step, the cause and the command that fixes it. Never raises (the
    failure it reports is what matters)."""
    from pipelines.outbound.alerts import failure, send

    name = error_type or type(exc).__name__
    try:
        return send(settings, failure(settings, run_date, step, name, str(exc), extra_fix))
    except Exception:
        log.exception("the failure alert for %s was not sent", run_date)
        return "failed"
