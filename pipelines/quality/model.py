"""Result types of the quality gate: one :class:`Check` per thing verified, a :class:`GateResult`
per run, and :class:`QualityGateFailed`, the error the CLI and the DAG raise on a failed gate.

Pure Python with no heavy imports, so the DAG file can import it while it is parsed.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pipelines.errors import DataProblem

Status = Literal["passed", "failed", "warning", "skipped"]
Kind = Literal[
    "suite",  # a mart's suite is missing or invalid
    "expectation",  # one Great Expectations expectation on one mart
    "schema",  # columns and types against the previous publish / the declared columns
    "reconciliation",  # a cross-row / cross-mart SQL reconciliation
    "key",  # a mart's key is unique (DuckDB group-by; the key of its dbt test or suite)
    "dbt_test",  # dbt test results from run_results.json
    "dbt_build",  # dbt model/seed/snapshot nodes that errored or were skipped
    "freshness",  # each source has a drop for the run date; usage events are recent
    "quarantine",  # share of quarantined rows per source
    "warehouse",  # the working warehouse could not be read
    "health",  # the night's health distribution is not degenerate (pipelines/lab/calibration.py)
]

#: How many example rows a failed check carries into the report.
EXAMPLE_ROWS = 5


@dataclass
class Check:
    """One verified property. ``failed`` fails the night; ``warning`` is reported only."""

    name: str
    kind: Kind
    status: Status
    message: str
    mart: str | None = None
    source: str | None = None
    severity: Literal["critical", "warning", "info"] = "critical"
    observed: Any = None
    example_rows: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    def to_dict(self) -> dict[str, Any]:
        return jsonable(asdict(self))

    def one_line(self) -> str:
        where = self.mart or self.source
        prefix = f"[{self.kind}{': ' + where if where else ''}]"
        return f"{prefix} {self.name}: {self.message}"


@dataclass
class GateResult:
    """The outcome of :func:`pipelines.quality.run_quality_gate` or ``check_quarantine``."""

    run_date: dt.date
    passed: bool
    checks: list[Check]
    report_json: Path | None = None
    report_html: Path | None = None
    #: Row count of every mart the gate validated (publish refuses if the warehouse changed since).
    marts: dict[str, int] = field(default_factory=dict)
    scope: Literal["gate", "quarantine"] = "gate"
    started_at: str = ""
    finished_at: str = ""
    #: What the gate validated, cheaply re-checkable: per mart the row count and row-hash sum
    #: (per partition for partitioned marts, :func:`pipelines.build.marts.mart_fingerprint`) and the
    #: sha256 of the dbt run results. The publish refuses when the warehouse no longer matches.
    fingerprint: dict[str, Any] = field(default_factory=dict)
    #: Partitions validated per partitioned mart: a daily mart's night plus any changed since the
    #: last publish; a monthly mart's months that changed since the last publish plus the one in progress.
    validated: dict[str, list[str]] = field(default_factory=dict)

    @property
    def html_path(self) -> Path | None:
        """Alias of ``report_html``."""
        return self.report_html

    @property
    def json_path(self) -> Path | None:
        """Alias of ``report_json``."""
        return self.report_json

    @property
    def failed_checks(self) -> list[Check]:
        return [c for c in self.checks if c.status == "failed"]

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if c.status == "warning"]

    def summary(self) -> dict[str, Any]:
        counts = {s: 0 for s in ("passed", "failed", "warning", "skipped")}
        for c in self.checks:
            counts[c.status] += 1
        return {
            "run_date": self.run_date.isoformat(),
            "scope": self.scope,
            "passed": self.passed,
            "checks": len(self.checks),
            "counts": counts,
            "failed": [c.one_line() for c in self.failed_checks],
            "warnings": [c.one_line() for c in self.warnings],
            "intake": intake_summary(self.checks),
            "report_json": str(self.report_json) if self.report_json else None,
            "report_html": str(self.report_html) if self.report_html else None,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "marts": dict(self.marts),
            "validated": dict(self.validated),
            "fingerprint": self.fingerprint,
            "results": [c.to_dict() for c in self.checks],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GateResult:
        """A result written by :meth:`to_dict` (the gate's ``quality_report.json``)."""
        known = set(Check.__dataclass_fields__)
        return cls(
            run_date=dt.date.fromisoformat(data["run_date"]),
            passed=bool(data["passed"]),
            checks=[Check(**{k: v for k, v in c.items() if k in known}) for c in data.get("results", [])],
            marts={k: int(v) for k, v in (data.get("marts") or {}).items()},
            scope=data.get("scope", "gate"),
            started_at=data.get("started_at", ""),
            finished_at=data.get("finished_at", ""),
            fingerprint=data.get("fingerprint") or {},
            validated=data.get("validated") or {},
        )

    def raise_if_failed(self) -> GateResult:
        """Raise :class:`QualityGateFailed` when the gate failed; return self otherwise."""
        if not self.passed:
            raise QualityGateFailed(self)
        return self


def intake_summary(checks: list[Check]) -> dict[str, Any]:
    """What the night's data lacked, from the intake checks (pipelines/quality/intake.py): the
    entities off, the optional columns defaulted per entity, and the snapshot rows carried forward
    from the previous drop per entity (their keys). The manifest and the published report show it
    so that nobody mistakes a default for data."""
    out: dict[str, Any] = {"entities_off": [], "columns_defaulted": {}, "rows_carried_forward": {}}
    for c in checks:
        d = c.details or {}
        if "entities_off" in d:
            out["entities_off"] = list(d["entities_off"])
        if "columns_defaulted" in d and "entity" in d:
            out["columns_defaulted"][d["entity"]] = dict(d["columns_defaulted"])
        if "carried_forward" in d and "entity" in d:
            out["rows_carried_forward"][d["entity"]] = list(d["carried_forward"])
    return out


class QualityGateFailed(DataProblem, RuntimeError):
    """The night's data failed the quality gate; nothing was published.

    The message names every failed check and where the full report (with example rows) is.
    """

    def __init__(self, result: GateResult) -> None:
        self.result = result
        failed = result.failed_checks
        what = "quarantine check" if result.scope == "quarantine" else "quality gate"
        lines = [
            f"{what} failed for run date {result.run_date.isoformat()}: "
            f"{len(failed)} failed check{'s' if len(failed) != 1 else ''}"
        ]
        lines += [f"  - {c.one_line()}" for c in failed]
        if result.report_html or result.report_json:
            lines.append(
                f"Report with example rows: {result.report_html or ''}"
                f"{' (JSON: ' + str(result.report_json) + ')' if result.report_json else ''}"
            )
        lines.append(
            "The previous publish is unchanged. Fix the data or the check, then re-run this date."
        )
        super().__init__("\n".join(lines))


def jsonable(value: Any) -> Any:
    """Convert values read from DuckDB / pandas / GE into plain JSON-compatible Python."""
    if value is None or isinstance(value, bool | str | int):
        return value
    if type(value).__name__ in ("NaTType", "NAType"):
        return None
    if type(value).__name__ == "Timestamp" and value.time() == dt.time() and value.tzinfo is None:
        return value.date().isoformat()  # DuckDB DATE columns arrive in pandas as midnight timestamps
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    # pandas / numpy scalars without importing them
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        try:
            return jsonable(value.item())
        except (TypeError, ValueError):
            pass
    if hasattr(value, "tolist"):
        return jsonable(value.tolist())
    if hasattr(value, "value") and type(value).__module__.startswith("great_expectations"):
        return jsonable(value.value)  # enums such as FailureSeverity
    return str(value)
