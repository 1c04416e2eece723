"""DuckDB vs Spark: the same nights built by the same dbt project on both engines give the
same marts.

A small generated business (accounts, a year and a bit of billing, usage) is ingested
night by night; the raw lake is written in the layout ingestion hands to both engines;
each night is built on DuckDB (the default target) and on Spark (dbt-spark `session`:
PySpark in the dbt process, local[2], a bounded driver heap), and then every mart and
every type 2 history is compared row by row through DuckDB reading Spark's Parquet
(pipelines/spark_marts.py). Equal means: the same columns, the same number of rows and,
after sorting, the same values; DOUBLE columns to a relative and absolute tolerance of
1e-9 (the engines sum floats in different orders, and Spark divides decimals in decimal
where DuckDB uses doubles), every other type exactly (DECIMAL to the cent, dates,
strings, booleans).

The first night is a full build of the models (Spark's slowest part is per-statement
overhead: ~1 s for each of the ~500 data tests on a busy 2-core machine), the last night
a full `dbt build` on both engines: seeds, the incremental models' insert_overwrite
path, contracts, every data test and every unit test. This module is the `spark` marker:
`make test-spark` runs it (docs/spark.md has the measured time).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from decimal import Decimal

import duckdb
import pytest

from pipelines.dbt import run_dbt
from pipelines.generate import generate
from pipelines.ingest import ingest
from pipelines.settings import Settings
from pipelines.spark_marts import attach_spark_relations

#: the module's fixture builds two nights on Spark: 38 min on this 2-core machine at load
#: 11 (docs/spark.md), beyond the suite's default per-test timeout
pytestmark = [pytest.mark.spark, pytest.mark.timeout(3600)]

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


def compare_engines(settings: Settings) -> dict[str, int]:
    """Assert every relation of SCHEMAS is the same on both engines; returns rows per relation."""
    counts: dict[str, int] = {}
    with duckdb.connect(str(settings.warehouse), read_only=True) as duck:
        expected = {s: _duckdb_relations(duck, s) for s in SCHEMAS}
        spark = duckdb.connect()
        for schema in SCHEMAS:
            order = {name: [c for c, _ in cols] for name, cols in expected[schema].items()}
            attached = attach_spark_relations(spark, settings, schema, order, column_order=order)
            assert sorted(attached) == sorted(expected[schema]), f"{schema}: relations differ"
            for name, columns in expected[schema].items():
                relation = f"{schema}.{name}"
                spark_columns = [
                    r[0] for r in spark.execute(f"select * from {relation} limit 0").description
                ]
                assert spark_columns == [c for c, _ in columns], f"{relation}: columns differ"
                want, got = _rows(duck, relation, columns), _rows(spark, relation, columns)
                assert len(got) == len(want), f"{relation}: {len(got)} rows on Spark, {len(want)} on DuckDB"
                for i, (w, g) in enumerate(zip(want, got, strict=True)):
                    bad = [
                        (c, w[j], g[j]) for j, (c, _) in enumerate(columns) if not _same_value(w[j], g[j])
                    ]
                    assert not bad, f"{relation} row {i}: (column, duckdb, spark) {bad[:5]}"
                counts[relation] = len(want)
        spark.close()
    return counts


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    home = tmp_path_factory.mktemp("parity")
    duck = Settings(home=home, engine="duckdb", spark_driver_memory="2g", spark_master="local[2]")
    spark = duck.model_copy(update={"engine": "spark"})
    summary = generate(
        duck.landing, accounts=ACCOUNTS, start_date=START, days=DAYS, drop_days=DROP_DAYS, seed=SEED,
    )
    run_dates = list(summary.run_dates)
    compared: dict[dt.date, dict[str, int]] = {}
    for i, run_date in enumerate(run_dates):
        ingest(duck, run_date)
        last = i == len(run_dates) - 1
        run_dbt(duck, run_date, "build")
        run_dbt(spark, run_date, "build", *(() if last else MODELS_ONLY))
        compared[run_date] = compare_engines(duck)
    yield {"settings": duck, "run_dates": run_dates, "compared": compared}


def test_every_mart_and_history_is_the_same_on_both_engines(nights: dict) -> None:
    for run_date, counts in nights["compared"].items():
        assert len([r for r in counts if r.startswith("marts.")]) == 15, run_date
        # the comparison saw data, not empty tables
        for relation in ("marts.dim_accounts", "marts.fct_account_tiers_daily", "marts.fct_mrr_account_monthly",
                         "marts.rpt_segment_retention_monthly", "snapshots.snap_crm__accounts"):
            assert counts[relation] > 0, (run_date, relation)


def test_daily_marts_keep_every_night_on_spark(nights: dict) -> None:
    """insert_overwrite added the second night's partition and kept the first one."""
    settings = nights["settings"]
    con = duckdb.connect()
    attach_spark_relations(con, settings, "marts", ["fct_account_tiers_daily"])
    dates = [r[0] for r in con.execute(
        "select distinct as_of_date from marts.fct_account_tiers_daily order by 1"
    ).fetchall()]
    assert dates == nights["run_dates"]
