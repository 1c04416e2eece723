"""The static HTML report published with the marts (inline CSS and SVG, opens from disk)."""

from pipelines.report.build import build_report

__all__ = ["build_report"]
