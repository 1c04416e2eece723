"""The run summary of a night: ``<home>/runs/<run_date>.json``, what the night did or where it failed.

One format and one writer for both ways of running a night: the DAG (its ``notify`` task and its
failure callback) and the CLI's ``segment-mart run`` (:func:`pipelines.ops.nightly.run_night`). A
published night records what each step returned; a failed night records the step, the error and
that the publish was left unchanged; the first failure of a run is the cause, later ones (e.g. a
dbt model's status task after ``dbt_build`` failed) are listed under ``also_failed``. Written
atomically (a temp file renamed over the old one). docs/operations.md.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.release import MANIFEST_NAME, PARQUET_DIR, REPORT_NAME, published_db_path

if TYPE_CHECKING:
    from pipelines.release import Manifest
    from pipelines.settings import Settings


def summary_path(settings: Settings, run_date: dt.date) -> Path:
    return settings.home / "runs" / f"{run_date.isoformat()}.json"


def read(settings: Settings, run_date: dt.date) -> dict[str, Any]:
    """The night's summary ({} when none was written)."""
    path = summary_path(settings, run_date)
    return json.loads(path.read_text()) if path.exists() else {}


def _write(settings: Settings, run_date: dt.date, summary: dict[str, Any]) -> Path:
    path = summary_path(settings, run_date)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    tmp.replace(path)
    return path


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def release_summary(manifest: Manifest) -> dict[str, Any]:
    """What the publish step reports of its release (the DAG's ``publish`` task returns it)."""
    return {
        "run_date": manifest.run_date.isoformat(),
        "release_id": manifest.release_id,
        "dataset_checksum": manifest.dataset_checksum,
        "marts": {name: {"rows": m.rows, "checksum": m.checksum} for name, m in manifest.marts.items()},
    }


def record_published(
    settings: Settings, run_date: dt.date, *, run_id: str, drop: str, loads: list[dict[str, Any]],
    quarantine: dict[str, Any], gate: dict[str, Any], published: dict[str, Any], crm: list[dict[str, Any]],
    digest: str | None = None, dag_id: str | None = None,
) -> Path:
    """Write the summary of a published night from what its steps returned (as plain dicts:
    the loads' fields, the quarantine check's and the gate's ``summary()``, :func:`release_summary`,
    the CRM write-backs' ``summary()``); ``digest``: how the morning digest went, once sent."""
    summary = {
        **({"dag_id": dag_id} if dag_id else {}),
        "run_id": run_id,
        "run_date": run_date.isoformat(),
        "status": "published",
        "drop": drop,
        "ingested": {
            f"{x['source']}/{x['entity']}": {k: x[k] for k in ("rows_read", "rows_loaded", "rows_quarantined")}
            for x in loads
        },
        "quarantine": quarantine.get("counts"),
        "quality_gate": {k: gate.get(k) for k in ("counts", "warnings", "report_html", "report_json")},
        "published": published,
        "crm_writeback": crm,
        "paths": {
            "duckdb": str(published_db_path(settings)),
            "parquet": str(settings.published / PARQUET_DIR),
            "manifest": str(settings.published / MANIFEST_NAME),
            "report": str(settings.published / REPORT_NAME),
            "quality_report": gate.get("report_html"),
        },
        "written_at": _now(),
        **({"digest": digest} if digest is not None else {}),
    }
    return _write(settings, run_date, summary)


def record_failure(
    settings: Settings, run_date: dt.date, *, run_id: str, step: str, error: str,
    try_number: int | None = None, dag_id: str | None = None,
) -> tuple[Path, bool]:
    """Record a failed step of the night; returns the path and whether this failure is the run's
    first (the cause, to alert) rather than one more listed under ``also_failed``."""
    previous = read(settings, run_date)
    if previous.get("run_id") == run_id and previous.get("status") == "failed":
        previous.setdefault("also_failed", []).append({"task": step, "error": error})
        return _write(settings, run_date, previous), False
    summary = {
        **({"dag_id": dag_id} if dag_id else {}),
        "run_id": run_id,
        "run_date": run_date.isoformat(),
        "status": "failed",
        "failed_task": step,
        **({"try_number": try_number} if try_number is not None else {}),
        "error": error,
        "published_unchanged": str(settings.published),
        "written_at": _now(),
    }
    return _write(settings, run_date, summary), True
