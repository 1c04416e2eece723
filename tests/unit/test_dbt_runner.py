"""The dbt runner: a failed dbt says why, and never leaves an earlier build's results behind."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from pipelines.build.dbt import DbtFailed, run_dbt, run_results_path
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


def _tiny_project(tmp_path: Path) -> Settings:
    """A one-model dbt project on DuckDB whose table records the as-of date it was built for."""
    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        "name: tiny\nversion: '1.0'\nconfig-version: 2\nprofile: tiny\n"
        "models:\n  tiny:\n    +materialized: table\n"
    )
    (project / "profiles.yml").write_text(
        "tiny:\n  target: duckdb\n  outputs:\n    duckdb:\n      type: duckdb\n"
        "      path: \"{{ env_var('SEGMENT_MART_DBT_WAREHOUSE') }}\"\n"
    )
    (project / "models" / "night.sql").write_text(
        "select cast('{{ env_var(\"DBT_ENV_CUSTOM_ENV_SEGMENT_MART_AS_OF_DATE\") if execute else \"1970-01-01\" }}'"
        " as date) as as_of_date\n"
    )
    return Settings(home=tmp_path / "var", dbt_project_dir=project)


def test_a_session_runs_many_nights_in_one_dbt_process_and_frees_the_warehouse_between(tmp_path: Path) -> None:
    import duckdb

    from pipelines.build.dbt import DbtSession
    from pipelines.build.dbt_results import RunResults

    settings = _tiny_project(tmp_path)
    nights = [dt.date(2026, 1, 5), dt.date(2026, 1, 6), dt.date(2026, 1, 7)]
    with DbtSession(settings) as session:
        for day in nights:
            results = RunResults.load(run_dbt(settings, day, "build", session=session))
            assert results.as_of_date == day.isoformat() and [r.status for r in results.results] == ["success"]
            # the worker holds no lock between two commands: this process may open the file to write
            with duckdb.connect(str(settings.warehouse)) as con:
                assert con.execute("select as_of_date from main.night").fetchall() == [(day,)]
            worker = session._proc
        # one process, which loaded the project once (its `dbt parse`), for every night
        assert worker is not None and worker.poll() is None
        log = (settings.home / "dbt_logs" / "dbt.log").read_text()
        assert log.count("Running with dbt=") == len(nights) + 1  # the parse, then one per night
        # a failed command fails like a dbt process of its own, and the session goes on
        with pytest.raises(DbtFailed, match="dbt run-operation for 2026-01-08 failed"):
            run_dbt(settings, dt.date(2026, 1, 8), "run-operation", "no_such_macro", session=session)
        run_dbt(settings, dt.date(2026, 1, 9), "build", session=session)
        assert session._proc is worker
    assert worker.poll() is not None  # the block ended the process


def test_no_yaml_mapping_of_a_node_has_integer_keys() -> None:
    """dbt saves its parse with msgpack, which refuses integer map keys: one unit test's var
    override such as `{1: 65}` makes every night parse the whole project again (dbt logs the
    cause at debug level only). Project vars are not saved there; node YAML is. Quote the
    keys (`{"1": 65}`): the models accept both."""
    import yaml

    project = Path(__file__).resolve().parents[2] / "dbt_project"
    found: list[str] = []

    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if not isinstance(key, str):
                    found.append(f"{where}: key {key!r}")
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}[{i}]")

    for path in sorted((project / "models").rglob("*.yml")) + sorted((project / "seeds").rglob("*.yml")):
        walk(yaml.safe_load(path.read_text()), str(path.relative_to(project)))
    assert not found, found


def test_a_build_that_meets_the_duckdb_lock_is_transient_by_type(tmp_path: Path) -> None:
    """Another process holds the warehouse open for writing: dbt fails with DuckDB's "Could not
    set lock on file", and run_dbt says so by type (a Transient, retried), not a DbtFailed."""
    import subprocess
    import sys

    from pipelines.build.dbt import DbtWarehouseLocked
    from pipelines.errors import DataProblem, Transient

    settings = _tiny_project(tmp_path)
    settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
         "print('locked', flush=True); time.sleep(120)", str(settings.warehouse)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(DbtWarehouseLocked, match="could not open the warehouse") as info:
            run_dbt(settings, dt.date(2026, 1, 5), "build")
    finally:
        holder.kill()
        holder.wait()
    assert isinstance(info.value, Transient) and not isinstance(info.value, DataProblem)
    assert "Could not set lock on file" in str(info.value)


def test_the_thrift_target_sends_every_sql_setting_of_the_session_target() -> None:
    """The Thrift server applies a session's SQL conf only under `set:hiveconf:` (docs/spark.md,
    "Session settings over Thrift"): a setting added to the `spark` target alone, e.g. the
    broadcast size factor the 10K-account cluster build needed, would silently not reach the
    cluster."""
    import yaml

    from pipelines.settings import PROJECT_ROOT

    outputs = yaml.safe_load((PROJECT_ROOT / "dbt_project" / "profiles.yml").read_text())["segment_mart"]["outputs"]
    session = {key: str(value) for key, value in outputs["spark"]["server_side_parameters"].items()
               if key.startswith("spark.sql.") and key != "spark.sql.warehouse.dir"}  # the server's, set at start
    thrift = {key.removeprefix("set:hiveconf:"): str(value)
              for key, value in outputs["spark_thrift"]["server_side_parameters"].items()}
    assert "spark.sql.autoBroadcastJoinThreshold" in session
    assert {key: thrift.get(key) for key in session} == session
    assert all(key.startswith("set:hiveconf:") for key in outputs["spark_thrift"]["server_side_parameters"])
