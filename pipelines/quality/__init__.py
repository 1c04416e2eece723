"""Quality gate: Great Expectations suites per mart, dbt test results, source freshness and
quarantine thresholds, with a per-run JSON + HTML report.

Light to import (no Great Expectations, pandas or DuckDB until a function runs)::

    from pipelines.quality import run_quality_gate, check_quarantine
    run_quality_gate(settings, run_date, dbt_run_results=target / "run_results.json").raise_if_failed()
"""

from pipelines.quality.gate import check_quarantine, run_quality_gate
from pipelines.quality.model import Check, GateResult, QualityGateFailed
from pipelines.quality.suites import MartSuite, SuiteError, load_suites, scaffold_suite, suite_files
from pipelines.warehouse import WarehouseUnavailable

__all__ = [
    "Check",
    "GateResult",
    "MartSuite",
    "QualityGateFailed",
    "SuiteError",
    "WarehouseUnavailable",
    "check_quarantine",
    "load_suites",
    "run_quality_gate",
    "scaffold_suite",
    "suite_files",
]
