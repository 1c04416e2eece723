"""The shared ``real_nights`` fixture really publishes what dbt built, night after night."""

from __future__ import annotations

from pipelines.release import open_published, read_manifest


def test_real_nights_publish_every_mart_of_the_last_night(real_nights):
    manifest = read_manifest(real_nights.settings)
    assert manifest is not None
    assert manifest.run_date == real_nights.last
    assert len(manifest.marts) >= 15
    con = open_published(real_nights.settings)
    try:
        for mart, entry in manifest.marts.items():
            rows = con.execute(f"select count(*) from marts.{mart}").fetchone()[0]
            assert rows == entry.rows, mart
        tiers = con.execute(
            "select count(*) from marts.fct_account_tiers_daily where as_of_date = ?", [real_nights.last]
        ).fetchone()[0]
        assert tiers > 0
    finally:
        con.close()


def test_a_later_night_reuses_dbt_parse(real_nights):
    """dbt parses the project once, not every night: the as-of date reaches dbt in the environment
    (a night's --vars would force a full parse) and no YAML key breaks dbt's saved parse (msgpack
    refuses integer map keys: "Failed to load parsed file"). dbt logs why it could not re-use it."""
    log = (real_nights.settings.home / "dbt_logs" / "dbt.log").read_text()
    invocations = log.split("Running with dbt=")[1:]
    assert len(invocations) >= len(real_nights.run_dates)
    later = invocations[-1]
    assert "Failed to load parsed file" not in later and "Unable to do partial parsing" not in later, (
        [line for line in later.splitlines() if "parsing" in line.lower() or "parsed file" in line][:5])
    assert "Partial parsing enabled" in later


def test_a_night_runs_its_data_tests_and_no_unit_test(real_nights):
    """A production night's dbt build leaves the unit tests to `make test`
    (tests/dbt/test_unit_tests.py) and runs every data test."""
    from pipelines.build.dbt import run_results_path
    from pipelines.build.dbt_results import RunResults

    results = RunResults.load(run_results_path(real_nights.settings, real_nights.last))
    kinds = {r.resource_type for r in results.results}
    assert "unit_test" not in kinds
    assert {"model", "seed", "test"} <= kinds
    assert len(results.tests) >= 500 and not results.failures
