"""Fixtures for end-to-end runs of the nightly DAG through real Airflow on generated data."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipelines.ops.airflow_home import AirflowHome, DagTestResult, airflow_home, dags_test, prepare
from pipelines.settings import Settings, get_settings

#: A tiny business: small enough for a fast test suite, big enough for every mart.
ACCOUNTS = 30
START = dt.date(2026, 1, 1)
DAYS = 60
#: A first night and a second one: the DAG tests break the second, then publish it and re-run it.
DROP_DAYS = 2
#: What the DAG tests leave out of each night's `dbt build` (the documented setting
#: dbt_build_exclude, through the Airflow environment): the 650-odd generic data tests (not_null,
#: unique, relationships, accepted values; two thirds of a night's dbt CPU). What these tests prove
#: is the orchestration: tasks, failures at the right task, the publish; the singular tests (the
#: business rules, e.g. the FX check a bad night must fail on) still run, and every data test runs
#: in the nights of tests/conftest.py's ``real_nights`` and of tests/dbt.
DAG_TEST_DBT_EXCLUDE = {"SEGMENT_MART_DBT_BUILD_EXCLUDE": "test_type:generic"}
SEED = 7
PROJECT_EXPECTATIONS = Path(__file__).resolve().parents[2] / "expectations"


@dataclass
class Night:
    """One Airflow + pipeline home with generated drops, and helpers to run and inspect it."""

    root: Path
    settings: Settings
    airflow: AirflowHome
    drops: list[dt.date]
    clean_landing: Path  # pristine copies of the drops (tests edit the live ones)
    expectations: Path  # this home's copy of the expectation suites (tests edit it)

    def run(self, run_date: dt.date) -> DagTestResult:
        return dags_test(self.airflow, [run_date])[0]

    def summary(self, run_date: dt.date) -> dict:
        return json.loads((self.settings.home / "runs" / f"{run_date.isoformat()}.json").read_text())

    def manifest(self) -> dict:
        return json.loads((self.settings.published / "manifest.json").read_text())

    def published_fingerprint(self) -> dict[str, str]:
        """sha256 of the published DuckDB file and manifest bytes, and where `current` points."""
        published = self.settings.published
        return {
            "duckdb": hashlib.sha256((published / "segment_mart.duckdb").resolve().read_bytes()).hexdigest(),
            "manifest": hashlib.sha256((published / "manifest.json").read_bytes()).hexdigest(),
            "current": os.readlink(published / "current"),
        }

    def drop(self, run_date: dt.date) -> Path:
        return self.settings.drop_dir(run_date)

    def restore_drop(self, run_date: dt.date) -> None:
        shutil.rmtree(self.drop(run_date))
        shutil.copytree(self.clean_landing / run_date.isoformat(), self.drop(run_date))

    def restore_expectations(self) -> None:
        shutil.rmtree(self.expectations)
        shutil.copytree(PROJECT_EXPECTATIONS, self.expectations)


def make_night(root: Path, drop_days: int = DROP_DAYS, api_port: int = 8080, extra_env: dict | None = None) -> Night:
    from pipelines.lab.generate import generate

    expectations = root / "expectations"
    shutil.copytree(PROJECT_EXPECTATIONS, expectations)
    settings = get_settings(home=root / "home", expectations_dir=expectations)
    summary = generate(
        root / "clean_landing", accounts=ACCOUNTS, start_date=START, days=DAYS, drop_days=drop_days, seed=SEED
    )
    shutil.copytree(root / "clean_landing", settings.landing)
    drops = [dt.date.fromisoformat(str(d)) for d in summary.run_dates]
    env = {"SEGMENT_MART_HOME": str(settings.home), "SEGMENT_MART_EXPECTATIONS_DIR": str(expectations),
           "SEGMENT_MART_RETRIES": "0", **(extra_env or {})}
    home = prepare(airflow_home(root / "airflow", settings=settings, api_port=api_port, extra_env=env))
    return Night(root, settings, home, drops, root / "clean_landing", expectations)


@pytest.fixture(scope="module")
def night(tmp_path_factory) -> Night:
    return make_night(tmp_path_factory.mktemp("e2e_nightly"), extra_env=DAG_TEST_DBT_EXCLUDE)
