"""The dbt runner: a failed dbt says why, and never leaves an earlier build's results behind."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from pipelines.dbt import DbtFailed, run_dbt, run_results_path
from pipelines.settings import Settings


def test_a_project_error_is_in_the_message_and_stale_results_are_removed(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        "name: broken\nversion: '1.0'\nconfig-version: 2\nprofile: broken\n"
    )
    (project / "profiles.yml").write_text(
        f"broken:\n  target: duckdb\n  outputs:\n    duckdb:\n      type: duckdb\n      path: {tmp_path / 'w.duckdb'}\n"
    )
    (project / "models" / "bad.sql").write_text("select {{ not_a_macro() }}\n")
    settings = Settings(home=tmp_path / "var", dbt_project_dir=project)
    day = dt.date(2026, 1, 5)
    stale = run_results_path(settings, day)
    stale.parent.mkdir(parents=True)
    stale.write_text('{"stale": true, "results": []}')
    with pytest.raises(DbtFailed) as info:
        run_dbt(settings, day, "build")
    assert f"dbt build for {day} failed" in str(info.value)
    assert "not_a_macro" in str(info.value)
    assert not stale.exists() or "stale" not in stale.read_text()
