"""dbt's ``run_results.json``: the one reader and classifier of a dbt run's node outcomes.

The dbt runner (its error message), the DAG's per-node status tasks and the quality gate's dbt
checks all read run results through this module, so "failed", "skipped" and "warned" mean the
same everywhere. Pure Python with no heavy imports: the DAG file may import it while parsed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.errors import DataProblem

#: Node statuses that mean the node (model, seed, snapshot, test) failed. dbt writes "fail" for
#: a test with failing rows, "error" for a node that raised, "runtime error" in older versions.
FAILED_STATUSES = frozenset({"error", "fail", "runtime error"})
#: Resource types that are tests (their statuses are pass / warn / fail / error / skipped).
TEST_TYPES = frozenset({"test", "unit_test"})


class RunResultsError(DataProblem, ValueError):
    """A file is missing or is not a dbt run_results.json; the message names it."""


@dataclass(frozen=True)
class NodeResult:
    """One node's outcome in a dbt run."""

    unique_id: str
    status: str
    failures: int | None = None
    message: str | None = None
    execution_time: float | None = None
    relation_name: str | None = None

    @property
    def resource_type(self) -> str:
        """``model``, ``seed``, ``snapshot``, ``test``, ``unit_test``, ..."""
        return self.unique_id.split(".", 1)[0]

    @property
    def name(self) -> str:
        """The node's name (third part of its unique id)."""
        parts = self.unique_id.split(".")
        return parts[2] if len(parts) >= 3 else self.unique_id

    @property
    def is_test(self) -> bool:
        return self.resource_type in TEST_TYPES

    @property
    def failed(self) -> bool:
        return self.status in FAILED_STATUSES

    @property
    def skipped(self) -> bool:
        return self.status == "skipped"

    @property
    def warned(self) -> bool:
        return self.status == "warn"

    def describe(self) -> str:
        """``<unique_id>: <status> (<n> failing rows) - <message>``."""
        text = f"{self.unique_id}: {self.status}"
        if self.failures:
            text += f" ({self.failures} failing row{'s' if self.failures != 1 else ''})"
        if self.message:
            text += f" - {self.message}"
        return text

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> NodeResult:
        failures = raw.get("failures")
        return cls(
            unique_id=str(raw.get("unique_id", "?")),
            status=str(raw.get("status", "?")),
            failures=int(failures) if isinstance(failures, int | float) else None,
            message=str(raw["message"]) if raw.get("message") else None,
            execution_time=raw.get("execution_time"),
            relation_name=raw.get("relation_name"),
        )


@dataclass(frozen=True)
class RunResults:
    """A parsed ``run_results.json``."""

    path: Path
    results: tuple[NodeResult, ...]
    dbt_version: str | None = None
    #: The as-of date the run was started with: its ``as_of_date`` var, else the date the pipeline
    #: passed in the environment (``metadata.env``); None when neither is recorded.
    as_of_date: str | None = None

    @classmethod
    def load(cls, path: Path) -> RunResults:
        """Read ``path``; :class:`RunResultsError` when it is missing or not a run_results.json."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
            raw_results = data["results"]
        except FileNotFoundError as exc:
            raise RunResultsError(f"{path} does not exist: did `dbt build` run for this date?") from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise RunResultsError(f"{path} is not a dbt run_results.json: {exc}") from exc
        return cls(
            path=path,
            results=tuple(NodeResult.from_dict(r) for r in raw_results),
            dbt_version=(data.get("metadata") or {}).get("dbt_version"),
            as_of_date=_as_of_date((data.get("args") or {}).get("vars"))
            or _as_of_date((data.get("metadata") or {}).get("env"), AS_OF_DATE_KEY),
        )

    def get(self, unique_id: str) -> NodeResult | None:
        return next((r for r in self.results if r.unique_id == unique_id), None)

    @property
    def failures(self) -> list[NodeResult]:
        """Every node (test or not) that failed."""
        return [r for r in self.results if r.failed]

    @property
    def tests(self) -> list[NodeResult]:
        return [r for r in self.results if r.is_test]

    @property
    def build_problems(self) -> list[NodeResult]:
        """Models, seeds and snapshots that failed or were skipped (an upstream node failed)."""
        return [r for r in self.results if not r.is_test and (r.failed or r.skipped)]

    def test_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.tests:
            counts[r.status] = counts.get(r.status, 0) + 1
        return counts


#: The as-of date in ``metadata.env`` of dbt's artifacts: dbt copies every variable named
#: ``DBT_ENV_CUSTOM_ENV_<KEY>`` there as ``<KEY>`` (pipelines.build.dbt.AS_OF_DATE_ENV).
AS_OF_DATE_KEY = "SEGMENT_MART_AS_OF_DATE"


def _as_of_date(dbt_vars: Any, key: str = "as_of_date") -> str | None:
    if isinstance(dbt_vars, str):  # `--vars` given as a YAML string
        import yaml

        try:
            dbt_vars = yaml.safe_load(dbt_vars) or {}
        except yaml.YAMLError:
            return None
    value = dbt_vars.get(key) if isinstance(dbt_vars, dict) else None
    return str(value) if value else None
