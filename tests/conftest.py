"""Shared fixtures: real marts built by the real pipeline from generated extracts.

``real_nights`` runs two whole nights once per test session (generate -> check -> ingest ->
quarantine check -> dbt build -> quality gate -> publish, through ``pipelines.ops.nightly``, the
functions the CLI and the DAG call), so the gate, publish and report tests work on the marts
dbt actually builds, never on a hand-made look-alike. Tests that change anything take
``real_home``: a private copy of that pipeline home.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipelines.settings import Settings, get_settings

#: Small enough for a fast suite, long enough for every mart (a year of billing history).
REAL_ACCOUNTS = 40
REAL_START = dt.date(2025, 3, 1)
REAL_DAYS = 400
REAL_DROP_DAYS = 2
REAL_SEED = 11


#: Modules that do not use ``real_nights`` but run in its ``make test`` process too, so that the
#: two processes take about as long (measured: the other tests took about twice as long as these;
#: the worked examples build five nights of their own, the CI soak four, the returning customer
#: three; the Airflow-on-Celery e2e test schedules two).
BESIDE_REAL_NIGHTS = ("tests/e2e/test_worked_examples.py", "tests/e2e/test_airflow_celery.py",
                      "tests/e2e/test_soak.py", "tests/e2e/test_returning_customer_nights.py")
#: Modules that run in the ``make test`` process of the Spark parity test, which ended about six
#: minutes before the other two (measured on 28df5ea: 18 min 15 s against 23 min 12 s and
#: 24 min 20 s); the calibration e2e test builds its own nights (about 3 min).
BESIDE_SPARK = ("tests/e2e/test_health_calibration.py",)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "beside_spark: runs in the process of the Spark parity test under "
                            "`make test`, to balance the three (set by tests/conftest.py)")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that uses the ``real_nights`` warehouse (directly or through ``real_home``)
    ``real_nights``, the tests of :data:`BESIDE_REAL_NIGHTS` ``beside_real_nights`` and those of
    :data:`BESIDE_SPARK` ``beside_spark``. ``make
    test`` runs those tests in one pytest process and the others in a second one at the same time
    (and the Spark parity test in a third): each process builds the session fixtures its own tests
    use, so the shared warehouse is built once, in one of them. tryfirst: before ``-m`` deselects
    by marker."""
    for item in items:
        if "real_nights" in item.fixturenames:
            item.add_marker(pytest.mark.real_nights)
        if item.nodeid.split("::")[0] in BESIDE_REAL_NIGHTS:
            item.add_marker(pytest.mark.beside_real_nights)
        if item.nodeid.split("::")[0] in BESIDE_SPARK:
            item.add_marker(pytest.mark.beside_spark)


@dataclass(frozen=True)
class RealNights:
    """A pipeline home where the last ``run_dates`` were built, gated and published in order."""

    settings: Settings
    run_dates: tuple[dt.date, ...]

    @property
    def last(self) -> dt.date:
        return self.run_dates[-1]


def _settings_for(home: Path) -> Settings:
    return get_settings(home=home)


@pytest.fixture(scope="session")
def real_nights(tmp_path_factory: pytest.TempPathFactory) -> RealNights:
    from pipelines.lab.generate import generate
    from pipelines.ops import nightly

    home = tmp_path_factory.mktemp("real_nights") / "home"
    settings = _settings_for(home)
    summary = generate(
        settings.landing, accounts=REAL_ACCOUNTS, start_date=REAL_START, days=REAL_DAYS,
        drop_days=REAL_DROP_DAYS, seed=REAL_SEED,
    )
    run_dates = tuple(dt.date.fromisoformat(str(d)) for d in summary.run_dates)
    for run_date in run_dates:
        nightly.run_night(settings, run_date)
    return RealNights(settings, run_dates)


@pytest.fixture
def real_home(real_nights: RealNights, tmp_path: Path) -> RealNights:
    """A private copy of the ``real_nights`` home (symlinks kept), free to change."""
    home = tmp_path / "home"
    shutil.copytree(real_nights.settings.home, home, symlinks=True)
    return RealNights(_settings_for(home), real_nights.run_dates)
