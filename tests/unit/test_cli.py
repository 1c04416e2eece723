"""The CLI: commands reach the shared step functions and report errors clearly."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from tests.drops import make_drop

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SEGMENT_MART_HOME", str(tmp_path / "var"))
    monkeypatch.setenv("SEGMENT_MART_LANDING_DIR", str(tmp_path / "landing"))
    return tmp_path


def test_check_and_ingest_a_drop(env: Path) -> None:
    make_drop(env / "landing", dt.date(2026, 1, 5))
    result = runner.invoke(app, ["check", "--run-date", "2026-01-05"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["ingest", "--run-date", "2026-01-05", "--source", "usage"])
    assert result.exit_code == 0, result.output
    assert "usage/events: read 3, loaded 3, quarantined 0, deduplicated 0" in result.output
    assert list((env / "var" / "lake" / "raw" / "usage" / "events" / "_run_date=2026-01-05").glob("*.parquet"))
    assert not (env / "var" / "warehouse").exists(), "ingestion writes the lake, never the warehouse"


def test_missing_drop_fails_with_the_files_named(env: Path) -> None:
    result = runner.invoke(app, ["check", "--run-date", "2026-01-05"])
    assert result.exit_code == 1
    assert "crm/accounts.{csv,parquet,jsonl}: is missing" in result.output


def test_run_date_comes_from_the_environment(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_drop(env / "landing", dt.date(2026, 1, 7))
    monkeypatch.setenv("SEGMENT_MART_RUN_DATE", "2026-01-07")
    assert runner.invoke(app, ["check"]).exit_code == 0


def test_run_date_is_required(env: Path) -> None:
    result = runner.invoke(app, ["ingest"])
    assert result.exit_code != 0 and "--run-date" in result.output


def test_config_shows_effective_paths(env: Path) -> None:
    result = runner.invoke(app, ["config", "--warehouse", str(env / "w.duckdb")])
    assert result.exit_code == 0
    assert f"warehouse (effective)    {env / 'w.duckdb'}" in result.output
    assert f"landing (effective)      {env / 'landing'}" in result.output


def test_contract_prints_json() -> None:
    result = runner.invoke(app, ["contract"])
    assert result.exit_code == 0 and '"raw_table": "raw.usage__events"' in result.output


def test_relative_paths_are_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines.settings import Settings

    monkeypatch.chdir(tmp_path)
    settings = Settings(home=Path("var/manual"))
    assert settings.warehouse == tmp_path / "var" / "manual" / "warehouse" / "segment_mart.duckdb"
