"""dbt's unit tests: every business rule of the dbt project on fixed inputs (the ``unit_tests:``
of the models' YAML, dbt_project/models/**/_*__models.yml), run here, in ``make test``.

A production night leaves them out (``pipelines.ops.nightly.build``: they give the same answer every
night and cost seconds a night). Here they run once, as one ``dbt test --select test_type:unit``
against a copy of the shared ``real_nights`` warehouse (dbt reads the column types of a unit
test's inputs from the built models), and each dbt unit test is a pytest test of its own name:
a broken rule fails ``test_dbt_unit_test[<unit test>]``.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

import pytest
import yaml

from pipelines.build.dbt import DbtFailed, run_dbt, run_results_path
from pipelines.build.dbt_results import RunResults
from pipelines.settings import PROJECT_ROOT, get_settings
from tests.conftest import RealNights

MODELS = PROJECT_ROOT / "dbt_project" / "models"
PROJECT = "segment_mart"


def declared_unit_tests() -> list[tuple[str, str]]:
    """(model, unit test) for every unit test declared in the project's model YAML."""
    declared = []
    for path in sorted(MODELS.rglob("*.yml")):
        for unit_test in (yaml.safe_load(path.read_text()) or {}).get("unit_tests") or []:
            declared.append((unit_test["model"], unit_test["name"]))
    return declared


UNIT_TESTS = declared_unit_tests()


@dataclass(frozen=True)
class UnitTestRun:
    results: RunResults
    error: str  # dbt's failure message ("" when every unit test passed)


@pytest.fixture(scope="module")
def unit_test_run(real_nights: RealNights, tmp_path_factory: pytest.TempPathFactory) -> UnitTestRun:
    home = tmp_path_factory.mktemp("dbt_unit_tests") / "home"
    shutil.copytree(real_nights.settings.home, home, symlinks=True)
    settings = get_settings(home=home)
    error = ""
    try:
        path = run_dbt(settings, real_nights.last, "test", "--select", "test_type:unit")
    except DbtFailed as exc:  # each unit test's own test below says which failed and why
        error = str(exc)
        path = run_results_path(settings, real_nights.last)
    return UnitTestRun(RunResults.load(path), error)


def test_the_project_declares_unit_tests() -> None:
    assert len(UNIT_TESTS) >= 35
    assert len(set(UNIT_TESTS)) == len(UNIT_TESTS)


def test_dbt_ran_every_declared_unit_test(unit_test_run: UnitTestRun) -> None:
    ran = sorted(r.unique_id for r in unit_test_run.results.results if r.resource_type == "unit_test")
    assert ran == sorted(f"unit_test.{PROJECT}.{model}.{name}" for model, name in UNIT_TESTS), unit_test_run.error


@pytest.mark.parametrize(("model", "name"), UNIT_TESTS, ids=[name for _, name in UNIT_TESTS])
def test_dbt_unit_test(unit_test_run: UnitTestRun, model: str, name: str) -> None:
    result = unit_test_run.results.get(f"unit_test.{PROJECT}.{model}.{name}")
    assert result is not None, f"dbt did not run unit test {name} of {model}:\n{unit_test_run.error}"
    assert result.status == "pass", result.describe()
