"""Querying the metrics with MetricFlow (dbt's semantic layer) on the working warehouse.

MetricFlow's CLI ``mf`` (package dbt-metricflow) reads the semantic manifest from
``<dbt project>/target/semantic_manifest.json`` (a fixed path in
``dbt_metricflow/cli/dbt_connectors/dbt_config_accessor.py``) and connects through the dbt
profile, while the pipeline writes dbt's artifacts to ``<home>/dbt_target``. So
:func:`metricflow_project` lays out a small dbt project folder per pipeline home,
``<home>/metricflow/``: ``dbt_project.yml`` (a link to the project's), ``target`` (a link to the
pipeline's dbt target folder: the semantic manifest of the last build) and MetricFlow's own
``logs/``. ``mf`` runs there with the ``metrics`` profile target (the warehouse attached
read-only) and the paths of these settings, so it answers from exactly the marts the last
night built. ``segment-mart metrics ...`` is that and nothing more (docs/metrics.md).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipelines.settings import Settings

METRICFLOW_DIR = "metricflow"


def mf_executable() -> str:
    """``mf`` next to this interpreter (the project's .venv), else on PATH."""
    local = Path(sys.executable).with_name("mf")
    return str(local) if local.exists() else (shutil.which("mf") or "mf")


def metricflow_project(settings: Settings) -> Path:
    """``<home>/metricflow``, the folder ``mf`` runs in (created or refreshed; cheap)."""
    from pipelines.build.dbt import target_dir
    from pipelines.release.metric_views import SEMANTIC_MANIFEST

    if settings.engine != "duckdb":
        raise RuntimeError(
            f"`segment-mart metrics` queries the embedded DuckDB warehouse; with engine {settings.engine!r} "
            "the marts live in Spark: read the metrics views of the published file (docs/metrics.md)")
    target = target_dir(settings)
    if not (target / SEMANTIC_MANIFEST).exists():
        raise FileNotFoundError(
            f"no dbt semantic manifest at {target / SEMANTIC_MANIFEST}: build the marts first "
            "(`segment-mart build --run-date YYYY-MM-DD` or `segment-mart run ...`)")
    folder = Path(settings.home) / METRICFLOW_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for name, points_to in (("dbt_project.yml", Path(settings.dbt_project_dir) / "dbt_project.yml"),
                            ("target", target)):
        link = folder / name
        if link.is_symlink() and Path(os.readlink(link)) == points_to.absolute():
            continue
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(points_to.absolute())
    return folder


def metricflow_environment(settings: Settings) -> dict[str, str]:
    """The environment ``mf`` needs: the dbt profile's paths for these settings, target ``metrics``."""
    from pipelines.build.dbt import dbt_environment

    env = dict(os.environ)
    env.update(dbt_environment(settings))
    env.update({
        "DBT_PROFILES_DIR": str(Path(settings.dbt_project_dir).absolute()),
        "SEGMENT_MART_DBT_TARGET": "metrics",
        "SEGMENT_MART_DBT_WAREHOUSE": str(Path(settings.warehouse).absolute()),
        # dbt names a DuckDB file's database after its stem; the semantic manifest refers to it
        "SEGMENT_MART_DBT_WAREHOUSE_CATALOG": Path(settings.warehouse).stem,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    })
    return env


def run_mf(settings: Settings, args: Sequence[str], *, capture: bool = False) -> subprocess.CompletedProcess[str]:
    """Run ``mf <args>`` against the working warehouse of ``settings``."""
    folder = metricflow_project(settings)
    return subprocess.run([mf_executable(), *args], cwd=folder, env=metricflow_environment(settings),
                          text=True, capture_output=capture, check=False)
