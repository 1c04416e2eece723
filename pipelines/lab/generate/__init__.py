"""Synthetic landing drops for a B2B SaaS business (``segment-mart generate``).

``generate()`` simulates accounts, subscriptions, invoices, CSM activities, support cases,
NPS answers and product usage, and writes them as nightly drops that follow the extract
contract (``pipelines.contract``), optionally with named defects for quality-gate tests.
"""

from pipelines.lab.generate.defects import DEFECTS
from pipelines.lab.generate.generator import GenerateSummary, generate

__all__ = ["DEFECTS", "GenerateSummary", "generate"]
