"""DuckDB vs Spark: the same nights built, gated and published by the same code on both
engines give the same marts and the same published files.

A small generated business (accounts, a year and a bit of billing, usage) lands once; each
engine has its own pipeline home and ingests it night by night into its own raw lake. DuckDB
runs every night whole (``nightly.run_night``, what ``segment-mart run`` does). Spark
(dbt-spark ``session``: PySpark in the dbt process, local[2], a bounded driver heap) runs
the first night as check, ingest, the models only, gate and publish, and the last night
whole with ``run_night`` (seeds, models, contracts and the data tests listed at
SPARK_BUILD_EXCLUDE's comment, the quality gate and the publish reading Spark's Parquet
through ``open_marts``), then every dbt unit test on Spark (a night leaves them out; the rules'
SQL must give the same answers on both engines).

After each night every mart and every type 2 history is compared row by row (Spark's marts
read as the gate reads them). Equal means: the same columns (for marts also the same
types), the same number of rows and, after sorting, the same values; DOUBLE columns to a
relative and absolute tolerance of 1e-9 (the histories' floats: the engines sum in
different orders), every other type exactly. The published manifests must agree too: every
mart's columns, row count and content checksum, the dataset checksum, and what the second
night's publish re-used from the first.

This module is the `spark` marker: `make test` runs it in a second pytest process next to
the rest of the suite, `make test-spark` alone (docs/spark.md has the measured time).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from decimal import Decimal

import duckdb
import pytest

from pipelines import nightly
from pipelines.dbt import DbtFailed, run_dbt, run_results_path
from pipelines.dbt_results import RunResults
from pipelines.generate import generate
from pipelines.marts import open_marts
from pipelines.publish import Manifest, open_published, read_manifest
from pipelines.settings import Settings
from pipelines.spark_marts import attach_spark_relations

#: the module's fixture builds two nights on Spark: 65 min on this 2-core machine at load 20
#: (docs/spark.md), beyond the suite's default per-test timeout; CI's limit is 90 min
pytestmark = [pytest.mark.spark, pytest.mark.timeout(5400)]

ACCOUNTS = 30
START = dt.date(2025, 3, 1)
DAYS = 400
DROP_DAYS = 2
SEED = 5
#: floats: DuckDB and Spark add them up in different orders
REL_TOL = ABS_TOL = 1e-9
#: compared besides the marts: the type 2 histories that replace dbt's snapshots
SCHEMAS = ("marts", "snapshots")
MODELS_ONLY = ("--exclude", "resource_type:test", "resource_type:unit_test")
#: Spark's last night runs every singular test and every generic test of the project's own
#: macros (unique_combination_of_columns, accepted_range, expression_is_true,
#: mutually_exclusive_ranges) and relationships, not dbt's built-in not_null, unique and
#: accepted_values (411 of 526 data tests at 30 accounts): one Spark job each, ~1-3 s on a busy
#: 2-core machine, on data this test proves equal to DuckDB's, where they all run. Every data
#: and unit test of the project then (494 and 21) passed on Spark with the first port (docs/spark.md).
SPARK_BUILD_EXCLUDE = "test_name:not_null test_name:unique test_name:accepted_values"


def _duckdb_relations(con: duckdb.DuckDBPyConnection, schema: str) -> dict[str, list[tuple[str, str]]]:
    rows = con.execute(
        """select table_name, column_name, data_type from information_schema.columns
        where table_schema = ? order by table_name, ordinal_position""",
        [schema],
    ).fetchall()
    relations: dict[str, list[tuple[str, str]]] = {}
    for table, column, data_type in rows:
        relations.setdefault(table, []).append((column, data_type))
    return relations


def _rows(con: duckdb.DuckDBPyConnection, relation: str, columns: list[tuple[str, str]]) -> list[tuple]:
    """All rows, sorted by every non-float column first (floats may differ in the last bits)."""
    exact = [f'"{c}"' for c, t in columns if t not in ("DOUBLE", "FLOAT")]
    floats = [f'"{c}"' for c, t in columns if t in ("DOUBLE", "FLOAT")]
    order = ", ".join(f"{c} nulls first" for c in exact + floats) or "1"
    select = ", ".join(f'"{c}"' for c, _ in columns)
    return con.execute(f"select {select} from {relation} order by {order}").fetchall()


def _same_value(a: object, b: object) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, dt.datetime) and isinstance(b, dt.datetime):
        # Spark writes TIMESTAMP as UTC instants (DuckDB reads TIMESTAMPTZ), DuckDB keeps
        # naive UTC times: compare the instants
        return _naive_utc(a) == _naive_utc(b)
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=REL_TOL, abs_tol=ABS_TOL)  # type: ignore[arg-type]
    if isinstance(a, Decimal) or isinstance(b, Decimal):
        return Decimal(str(a)) == Decimal(str(b))
    return a == b


def _naive_utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value


def compare_engines(duck_settings: Settings, spark_settings: Settings) -> dict[str, int]:
    """Assert every relation of SCHEMAS is the same on both engines; returns rows per relation.

    Spark's marts are read the way the gate and the publish read them (``open_marts``: views
    with the contract's columns and types); its histories through ``attach_spark_relations``
    in DuckDB's column order."""
    counts: dict[str, int] = {}
    with duckdb.connect(str(duck_settings.warehouse), read_only=True) as duck:
        expected = {s: _duckdb_relations(duck, s) for s in SCHEMAS}
        spark = open_marts(spark_settings)
        try:
            for schema in SCHEMAS:
                if schema == "marts":
                    attached = [r for r, in spark.execute(
                        "select table_name from information_schema.tables where table_schema = 'marts'"
                    ).fetchall()]
                else:
                    order = {name: [c for c, _ in cols] for name, cols in expected[schema].items()}
                    attached = attach_spark_relations(spark, spark_settings, schema, order, column_order=order)
                assert sorted(attached) == sorted(expected[schema]), f"{schema}: relations differ"
                for name, columns in expected[schema].items():
                    relation = f"{schema}.{name}"
                    spark_columns = _duckdb_relations(spark, schema)[name] if schema == "marts" else [
                        (r[0], None) for r in spark.execute(f"select * from {relation} limit 0").description]
                    want_columns = columns if schema == "marts" else [(c, None) for c, _ in columns]
                    # marts: names and types (the published files' schema); histories: names
                    assert spark_columns == want_columns, f"{relation}: columns differ"
                    want, got = _rows(duck, relation, columns), _rows(spark, relation, columns)
                    assert len(got) == len(want), f"{relation}: {len(got)} rows on Spark, {len(want)} on DuckDB"
                    for i, (w, g) in enumerate(zip(want, got, strict=True)):
                        bad = [
                            (c, w[j], g[j]) for j, (c, _) in enumerate(columns) if not _same_value(w[j], g[j])
                        ]
                        assert not bad, f"{relation} row {i}: (column, duckdb, spark) {bad[:5]}"
                    counts[relation] = len(want)
        finally:
            spark.close()
    return counts


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Each night on both engines, from the same landing folder, each in its own pipeline home.

    DuckDB runs every night whole (``run_night``: what ``segment-mart run`` does). Spark runs
    night 1 as check, ingest, the models only, gate and publish; the last night whole
    (``run_night`` with SEGMENT_MART_ENGINE=spark: seeds, models, the data tests, the gate and
    the publish reading Spark's Parquet), then every unit test on Spark."""
    root = tmp_path_factory.mktemp("parity")
    landing = root / "landing"
    common = {"landing_dir": landing, "spark_driver_memory": "2g", "spark_master": "local[2]"}
    duck = Settings(home=root / "duckdb", engine="duckdb", **common)
    spark = Settings(home=root / "spark", engine="spark", dbt_build_exclude=SPARK_BUILD_EXCLUDE, **common)
    summary = generate(landing, accounts=ACCOUNTS, start_date=START, days=DAYS, drop_days=DROP_DAYS, seed=SEED)
    run_dates = [dt.date.fromisoformat(str(d)) for d in summary.run_dates]
    compared: dict[dt.date, dict[str, int]] = {}
    published: dict[dt.date, dict[str, Manifest]] = {}
    for i, run_date in enumerate(run_dates):
        nightly.run_night(duck, run_date)
        if i == len(run_dates) - 1:
            nightly.run_night(spark, run_date)
        else:
            nightly.check_extracts(spark, run_date)
            nightly.ingest_sources(spark, run_date)
            run_dbt(spark, run_date, "build", *MODELS_ONLY)
            nightly.publish(spark, run_date, nightly.quality_gate(spark, run_date))
        compared[run_date] = compare_engines(duck, spark)
        published[run_date] = {"duckdb": read_manifest(duck), "spark": read_manifest(spark)}
    night_results = RunResults.load(run_results_path(spark, run_dates[-1]))
    # a night leaves the unit tests out (pipelines.nightly.build): run them all on Spark here
    try:
        unit_results = run_dbt(spark, run_dates[-1], "test", "--select", "test_type:unit")
    except DbtFailed:
        unit_results = run_results_path(spark, run_dates[-1])
    yield {"duckdb": duck, "spark": spark, "run_dates": run_dates, "compared": compared, "published": published,
           "night_results": night_results, "unit_tests": RunResults.load(unit_results)}


def test_every_mart_and_history_is_the_same_on_both_engines(nights: dict) -> None:
    for run_date, counts in nights["compared"].items():
        # every published mart was compared (17 today), not a fixed count that goes stale
        compared = {r.split(".", 1)[1] for r in counts if r.startswith("marts.")}
        assert compared == set(nights["published"][run_date]["duckdb"].marts), run_date
        assert len(compared) >= 15, run_date
        # the comparison saw data, not empty tables
        for relation in ("marts.dim_accounts", "marts.fct_account_tiers_daily", "marts.fct_mrr_account_monthly",
                         "marts.rpt_segment_retention_monthly", "snapshots.snap_crm__accounts"):
            assert counts[relation] > 0, (run_date, relation)


def test_spark_night_ran_the_tests_it_was_meant_to(nights: dict) -> None:
    """The last Spark night's build ran every data test but dbt's built-in not_null, unique and
    accepted_values (setting dbt_build_exclude) and no unit test, and all passed; every unit
    test then passed on Spark."""
    results = nights["night_results"]
    kinds = {r.resource_type for r in results.tests}
    assert kinds == {"test"}
    names = [r.name for r in results.tests]
    assert not [n for n in names if n.startswith(("not_null_", "unique_", "accepted_values_"))
                and not n.startswith("unique_combination")]
    assert len(names) >= 100
    assert not results.failures
    units = nights["unit_tests"]
    assert {r.resource_type for r in units.results} == {"unit_test"} and len(units.results) >= 35
    assert not units.failures, [r.describe() for r in units.failures]


def test_both_engines_publish_the_same_marts(nights: dict) -> None:
    """The gate passed and the publish wrote the same BI files from Spark's Parquet: every
    mart with the same columns, row count and content checksum as the DuckDB night's."""
    for run_date, manifests in nights["published"].items():
        duck, spark = manifests["duckdb"], manifests["spark"]
        assert duck is not None and spark is not None, run_date
        assert duck.run_date == spark.run_date == run_date
        assert sorted(spark.marts) == sorted(duck.marts), run_date
        for mart, want in duck.marts.items():
            got = spark.marts[mart]
            assert (got.columns, got.rows, got.checksum) == (want.columns, want.rows, want.checksum), (run_date, mart)
        assert spark.dataset_checksum == duck.dataset_checksum, run_date
    # the published DuckDB file opens and holds the marts
    with open_published(nights["spark"]) as con:
        tiers = con.execute("select count(*) from marts.fct_account_tiers_daily").fetchone()[0]
    assert tiers == nights["published"][nights["run_dates"][-1]]["duckdb"].marts["fct_account_tiers_daily"].rows > 0


def test_spark_publish_writes_only_the_delta(nights: dict) -> None:
    """The fingerprint of Spark's partitioned Parquet is stable across builds: the second
    night's publish copied the previous release and re-linked the first night's partitions,
    exactly as the DuckDB night did."""
    manifests = nights["published"][nights["run_dates"][-1]]
    duck, spark = manifests["duckdb"].build, manifests["spark"].build
    assert spark["duckdb"] == "previous release + delta"
    assert spark["partitions_linked"] > 0
    for key in ("partitions_written", "partitions_linked", "marts_linked"):
        assert spark[key] == duck[key], key


def test_daily_marts_keep_every_night_on_spark(nights: dict) -> None:
    """insert_overwrite added the second night's partition and kept the first one."""
    con = duckdb.connect()
    attach_spark_relations(con, nights["spark"], "marts", ["fct_account_tiers_daily"])
    dates = [r[0] for r in con.execute(
        "select distinct as_of_date from marts.fct_account_tiers_daily order by 1"
    ).fetchall()]
    assert dates == nights["run_dates"]
