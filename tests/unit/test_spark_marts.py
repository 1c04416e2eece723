"""Reading Spark-built marts without Spark (pipelines/build/spark_marts.py, pipelines/build/marts.py).

The files here are written by DuckDB in the layout Spark writes (``<home>/spark/warehouse/
marts.db/<mart>/as_of_date=.../part-*.parquet``, the partition column only in the folder
name, TIMESTAMP as a UTC instant) next to a dbt manifest.json carrying the contracts; the
parity test (tests/spark) reads what Spark itself wrote.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import pytest

from pipelines.build.dbt import target_dir
from pipelines.build.marts import list_marts, mart_columns, mart_fingerprint, open_marts
from pipelines.build.spark_marts import contract_columns, relation_dir
from pipelines.ops.preflight import latest_night
from pipelines.settings import Settings
from pipelines.warehouse import WarehouseUnavailable

DAILY = [("as_of_date", "date"), ("account_id", "string"), ("tier_number", "integer"),
         ("arr_usd", "decimal(18,2)")]
WHOLE = [("account_id", "string"), ("is_live", "boolean")]


def _manifest(settings: Settings, models: dict[str, list[tuple[str, str]]]) -> None:
    nodes = {f"model.segment_mart.{name}": {
        "resource_type": "model", "name": name, "schema": "marts",
        "columns": {c: {"name": c, "data_type": t} for c, t in cols},
    } for name, cols in models.items()}
    nodes["model.segment_mart.stg_x"] = {"resource_type": "model", "name": "stg_x", "schema": "staging",
                                         "columns": {"a": {"name": "a", "data_type": "string"}}}
    path = target_dir(settings) / "manifest.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"nodes": nodes}))


def _spark_files(settings: Settings, nights: list[str]) -> None:
    con = duckdb.connect()
    for i, night in enumerate(nights):
        folder = relation_dir(settings, "marts", "fct_daily") / f"as_of_date={night}"
        folder.mkdir(parents=True)
        # Spark's order and types: partition column absent (it is the folder), bigint, double
        con.execute(f"""copy (select 'a' || x as account_id, (x + {i})::bigint as tier_number,
            (x * 1000.5)::decimal(38,6) as arr_usd from range(3) t(x))
            to '{folder}/part-00000-x.c000.snappy.parquet' (format parquet)""")
        (folder / ".part-00000-x.c000.snappy.parquet.crc").write_bytes(b"crc")
    whole = relation_dir(settings, "marts", "dim_whole")
    whole.mkdir(parents=True)
    con.execute(f"copy (select true as is_live, 'a1' as account_id) to '{whole}/part-00000.parquet'")
    (whole / "_SUCCESS").touch()
    # a partitioned mart with no partition yet: Spark leaves the folder, no file
    relation_dir(settings, "marts", "fct_empty").mkdir(parents=True)


@pytest.fixture
def spark_settings(tmp_path: Path) -> Settings:
    settings = Settings(home=tmp_path, engine="spark")
    _manifest(settings, {"fct_daily": DAILY, "dim_whole": WHOLE, "fct_empty": DAILY})
    _spark_files(settings, ["2026-03-01", "2026-03-02"])
    return settings


def test_contract_columns_come_from_the_manifest_in_yaml_order(spark_settings: Settings) -> None:
    contracts = contract_columns(target_dir(spark_settings) / "manifest.json", "marts")
    assert sorted(contracts) == ["dim_whole", "fct_daily", "fct_empty"]
    assert contracts["fct_daily"] == DAILY


def test_open_marts_reads_spark_parquet_with_the_contracts_columns_and_types(spark_settings: Settings) -> None:
    con = open_marts(spark_settings)
    try:
        assert list_marts(con) == ["dim_whole", "fct_daily", "fct_empty"]
        assert mart_columns(con, "fct_daily") == [
            ("as_of_date", "DATE"), ("account_id", "VARCHAR"), ("tier_number", "INTEGER"),
            ("arr_usd", "DECIMAL(18,2)")]
        assert mart_columns(con, "dim_whole") == [("account_id", "VARCHAR"), ("is_live", "BOOLEAN")]
        assert con.execute("select count(*) from marts.fct_empty").fetchone() == (0,)
        assert mart_columns(con, "fct_empty") == mart_columns(con, "fct_daily")
        fp = mart_fingerprint(con, "fct_daily", mart_columns(con, "fct_daily"), "as_of_date")
        assert sorted(fp["partitions"]) == ["2026-03-01", "2026-03-02"]
        assert fp["rows"] == 6
        assert con.execute(
            "select arr_usd from marts.fct_daily where as_of_date = date '2026-03-02' and account_id = 'a2'"
        ).fetchone() == (pytest.approx(2001.0),)
    finally:
        con.close()


def test_a_rebuilt_partition_changes_only_its_fingerprint(spark_settings: Settings) -> None:
    with open_marts(spark_settings) as con:
        before = mart_fingerprint(con, "fct_daily", mart_columns(con, "fct_daily"), "as_of_date")
    folder = relation_dir(spark_settings, "marts", "fct_daily") / "as_of_date=2026-03-02"
    for f in folder.glob("*.parquet"):
        f.unlink()
    duckdb.sql(f"copy (select 'a9' as account_id, 1::bigint as tier_number, 1.0::decimal(38,6) as arr_usd) "
               f"to '{folder}/part-00000-y.parquet'")
    with open_marts(spark_settings) as con:
        after = mart_fingerprint(con, "fct_daily", mart_columns(con, "fct_daily"), "as_of_date")
    assert after["partitions"]["2026-03-01"] == before["partitions"]["2026-03-01"]
    assert after["partitions"]["2026-03-02"] != before["partitions"]["2026-03-02"]


def test_latest_night_on_spark_is_the_newest_partition_folder(spark_settings: Settings, tmp_path: Path) -> None:
    assert latest_night(Settings(home=tmp_path / "empty", engine="spark")) is None
    # a night's folder without a file (a partition being replaced) does not count
    (relation_dir(spark_settings, "marts", "fct_account_tiers_daily") / "as_of_date=2026-03-09").mkdir(parents=True)
    assert latest_night(spark_settings) is None
    _copy = relation_dir(spark_settings, "marts", "fct_account_tiers_daily") / "as_of_date=2026-03-02"
    _copy.mkdir()
    (_copy / "part-0.parquet").write_bytes(b"")
    assert latest_night(spark_settings) == dt.date(2026, 3, 2)


def test_open_marts_on_spark_says_what_to_run_when_nothing_was_built(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, engine="spark")
    with pytest.raises(WarehouseUnavailable, match="run dbt for this date first"):
        open_marts(settings)
    _manifest(settings, {"fct_daily": DAILY})
    with pytest.raises(WarehouseUnavailable, match="Spark wrote no marts under"):
        open_marts(settings)


def test_the_warehouse_location_is_a_setting(tmp_path: Path) -> None:
    """The gate and the publish read where the Thrift server writes: setting spark_warehouse, a
    path or file:// URI (default <home>/spark/warehouse); other schemes are refused by name."""
    from pipelines.build.dbt import dbt_environment
    from pipelines.build.spark_marts import WarehouseLocationError, spark_warehouse

    home = tmp_path / "home"
    assert spark_warehouse(Settings(home=home)) == home / "spark" / "warehouse"
    shared = tmp_path / "shared warehouse"
    for location in (str(shared), shared.as_uri()):
        settings = Settings(home=home, engine="spark", spark_warehouse=location)
        assert spark_warehouse(settings) == shared
        assert relation_dir(settings, "marts", "dim_accounts") == shared / "marts.db" / "dim_accounts"
        # dbt's targets get the same location (spark.sql.warehouse.dir of the session target)
        assert dbt_environment(settings)["SEGMENT_MART_DBT_SPARK_WAREHOUSE"] == shared.as_uri()
    with pytest.raises(WarehouseLocationError, match="s3a://lake/warehouse"):
        spark_warehouse(Settings(home=home, spark_warehouse="s3a://lake/warehouse"))
