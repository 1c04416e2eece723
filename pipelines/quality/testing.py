"""A tiny, hand-made warehouse with a few marts and their suites, for the unit tests of the gate,
the publish and the report (and for trying them out by hand). Not used by the pipeline.

    settings = demo_settings(tmp_path)
    build_demo_warehouse(settings, run_date)            # raw lake audit + marts, passes the gate
    build_demo_warehouse(settings, run_date, defect="tier")   # a mart check fails
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

from pipelines.settings import Settings

Defect = Literal["tier", "bridge", "null_key", "extra_mart", "schema"] | None

DEMO_SUITES: dict[str, str] = {
    "dim_accounts": """
mart: dim_accounts
description: One row per account.
key: account_id
columns: {account_id: VARCHAR, account_name: VARCHAR, created_date: DATE}
expectations:
  - expect_column_values_to_not_be_null: {column: account_name}
""",
    "fct_account_tiers_daily": """
mart: fct_account_tiers_daily
description: One row per account and day with the assigned tier.
key: [account_id, as_of_date]
columns:
  account_id: VARCHAR
  as_of_date: DATE
  assigned_tier: VARCHAR
  tier_number: INTEGER
  tier_score: DOUBLE
  arr_reporting: DECIMAL(18,2)
expectations:
  - expect_column_values_to_be_in_set:
      column: assigned_tier
      value_set: [Strategic, Core, Scale, Tech-touch]
  - expect_column_values_to_be_between: {column: tier_number, min_value: 1, max_value: 4}
  - type: expect_column_values_to_be_between
    kwargs: {column: tier_score, min_value: 0, max_value: 100}
    severity: warning
  - expect_column_max_to_be_between:
      column: as_of_date
      min_value: {$PARAMETER: run_date}
      max_value: {$PARAMETER: run_date}
""",
    "fct_account_health_daily": """
mart: fct_account_health_daily
description: One row per account and day with the health score.
key: [account_id, as_of_date]
row_count: {min: 1, max_shrink: 0.5, max_growth: 2.0}
expectations:
  - expect_column_values_to_be_in_set:
      column: health_status
      value_set: [healthy, at-risk, critical]
  - expect_column_values_to_be_between: {column: health_score, min_value: 0, max_value: 100}
""",
    "rpt_segment_retention_monthly": """
mart: rpt_segment_retention_monthly
description: MRR bridge and retention per segment and month.
key: [segment_dimension, segment_value, month]
derived:
  bridge_gap: >-
    starting_mrr + new_mrr + expansion_mrr + reactivation_mrr
    - contraction_mrr - churned_mrr - ending_mrr
expectations:
  - expect_column_values_to_be_between: {column: bridge_gap, min_value: -0.005, max_value: 0.005}
  - expect_column_values_to_be_between: {column: grr, min_value: 0, max_value: 1, mostly: 1.0}
reconciliations:
  - name: tier segments sum to the total
    description: every month, the tiers' ending MRR adds up to the total row
    sql: |
      select month, sum(ending_mrr) filter (where segment_dimension = 'tier') as tiers,
             sum(ending_mrr) filter (where segment_dimension = 'total') as total
      from marts.rpt_segment_retention_monthly
      group by month
      having abs(coalesce(tiers, 0) - coalesce(total, 0)) > 0.005
""",
    "rpt_tier_distribution": """
mart: rpt_tier_distribution
description: Tier shares against targets on the run date.
key: [as_of_date, tier_number]
row_count: {min: 4, max: 4}
expectations:
  - expect_column_values_to_be_between: {column: account_share, min_value: 0, max_value: 1}
""",
}

TIERS = (("Strategic", 1, 150_000), ("Core", 2, 50_000), ("Scale", 3, 12_000), ("Tech-touch", 4, 2_000))


def demo_settings(root: Path, **overrides: object) -> Settings:
    """Settings with every path below ``root`` and the demo suites in ``root/expectations``."""
    exp = Path(root) / "expectations"
    write_demo_suites(exp)
    return Settings(home=Path(root) / "var", expectations_dir=exp, **overrides)  # type: ignore[arg-type]


def write_demo_suites(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for mart, text in DEMO_SUITES.items():
        (directory / f"{mart}.yml").write_text(text.lstrip())


def build_demo_warehouse(
    settings: Settings,
    run_date: dt.date,
    *,
    accounts: int = 20,
    quarantined: dict[str, int] | None = None,
    defect: Defect = None,
    months: int = 6,
) -> Path:
    """(Re)build ``settings.warehouse`` with the demo marts, and a raw lake (audit, quarantine,
    usage events) for ``run_date``.

    ``accounts`` scales every mart (so a reader can tell releases apart); ``quarantined`` sets
    quarantined rows per source (of 1000 read); ``defect`` plants one problem.
    """
    import duckdb

    path = Path(settings.warehouse)
    path.parent.mkdir(parents=True, exist_ok=True)
    for p in (path, path.with_name(path.name + ".wal")):
        p.unlink(missing_ok=True)
    quarantined = quarantined or {}
    con = duckdb.connect(str(path))
    try:
        con.execute("create schema marts")
        write_demo_lake(settings, run_date, quarantined)

        con.execute("create temp table acc as select i, 'A' || lpad(i::varchar, 4, '0') as account_id from range(?) t(i)",
                    [accounts])
        con.execute("""create table marts.dim_accounts as
            select account_id, 'Account ' || i as account_name, date '2024-01-01' + i::int as created_date from acc""")
        tiers = "[" + ", ".join(f"('{n}', {k}, {a})" for n, k, a in TIERS) + "]"
        con.execute(f"""create table marts.fct_account_tiers_daily as
            select account_id, ?::date as as_of_date, t[1] as assigned_tier, t[2]::integer as tier_number,
                   (100 - t[2]::int * 20 + i % 7)::double as tier_score,
                   (t[3]::int + i * 10)::decimal(18, 2) as arr_reporting
            from (select *, {tiers}[i % 4 + 1] as t from acc)""", [run_date])
        con.execute("""create table marts.fct_account_health_daily as
            select account_id, ?::date as as_of_date, ((i * 37) % 100)::double as health_score,
                   case when (i * 37) % 100 >= 70 then 'healthy' when (i * 37) % 100 >= 40 then 'at-risk'
                        else 'critical' end as health_status
            from acc""", [run_date])
        con.execute(f"""create table marts.rpt_segment_retention_monthly as
            with m as (select (date_trunc('month', ?::date) - (k * interval 1 month))::date as month
                       from range(?) t(k)),
            seg as (select * from (values ('tier', 'Strategic', 60000), ('tier', 'Core', 30000),
                                          ('tier', 'Scale', 8000), ('tier', 'Tech-touch', 1000)) v(d, s, base)),
            rows as (
                select d as segment_dimension, s as segment_value, month,
                       (base + {accounts} * 10)::decimal(18, 2) as starting_mrr,
                       (base * 0.05)::decimal(18, 2) as new_mrr, (base * 0.04)::decimal(18, 2) as expansion_mrr,
                       (base * 0.01)::decimal(18, 2) as reactivation_mrr,
                       (base * 0.02)::decimal(18, 2) as contraction_mrr, (base * 0.03)::decimal(18, 2) as churned_mrr
                from seg cross join m),
            bridged as (select *, starting_mrr + new_mrr + expansion_mrr + reactivation_mrr - contraction_mrr
                               - churned_mrr as ending_mrr from rows),
            withtotal as (
                select * from bridged
                union all
                select 'total', 'all', month, sum(starting_mrr), sum(new_mrr), sum(expansion_mrr),
                       sum(reactivation_mrr), sum(contraction_mrr), sum(churned_mrr), sum(ending_mrr)
                from bridged group by month)
            select *, ((starting_mrr - contraction_mrr - churned_mrr) / starting_mrr)::double as grr,
                   ((starting_mrr + expansion_mrr - contraction_mrr - churned_mrr) / starting_mrr)::double as nrr,
                   0.95::double as logo_retention
            from withtotal""", [run_date, months])
        con.execute(f"""create table marts.rpt_tier_distribution as
            with t as (select * from (values {', '.join(f"('{n}', {k})" for n, k, _ in TIERS)}) v(tier_name, tier_number)),
            c as (select tier_number, count(*) as account_count, sum(arr_reporting) as arr_reporting
                  from marts.fct_account_tiers_daily group by all)
            select ?::date as as_of_date, t.tier_number, t.tier_name, coalesce(account_count, 0) as account_count,
                   coalesce(c.arr_reporting, 0)::decimal(18, 2) as arr_reporting,
                   coalesce(account_count, 0) / (select count(*) from marts.fct_account_tiers_daily) as account_share,
                   coalesce(c.arr_reporting, 0) / (select sum(arr_reporting) from marts.fct_account_tiers_daily)
                       as arr_share,
                   [0.1, 0.3, 0.4, 0.0][t.tier_number] as min_account_share,
                   [0.2, 0.4, 0.6, null][t.tier_number] as max_account_share,
                   [0.5, 0.25, 0.1, 0.0][t.tier_number] as min_arr_share,
                   [0.7, 0.35, 0.2, 0.05][t.tier_number] as max_arr_share
            from t left join c using (tier_number)""", [run_date])

        if defect == "tier":
            con.execute("update marts.fct_account_tiers_daily set assigned_tier = 'Gold' where account_id = 'A0003'")
        elif defect == "bridge":
            con.execute("update marts.rpt_segment_retention_monthly set ending_mrr = ending_mrr + 100 "
                        "where segment_value = 'Core' and month = (select max(month) from marts.rpt_segment_retention_monthly)")
        elif defect == "null_key":
            con.execute("update marts.dim_accounts set account_id = null where account_name = 'Account 1'")
        elif defect == "extra_mart":
            con.execute("create table marts.fct_unsuited as select 1 as x")
        elif defect == "schema":
            con.execute("alter table marts.fct_account_health_daily add column surprise varchar")
        con.execute("checkpoint")
    finally:
        con.close()
    return path


def write_demo_lake(settings: Settings, run_date: dt.date, quarantined: dict[str, int] | None = None) -> None:
    """A raw lake for ``run_date`` as ingestion would leave it: 1000 rows read per entity,
    ``quarantined[source]`` of them quarantined in the source's first entity, an (empty)
    partition per entity and five usage events of the run date."""
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipelines import lake
    from pipelines.contract import ENTITIES, SOURCES

    quarantined = quarantined or {}
    shutil.rmtree(lake.raw_dir(settings.lake), ignore_errors=True)
    load_id = lake.new_load_id(run_date)
    loaded_at = dt.datetime.combine(run_date + dt.timedelta(days=1), dt.time(1))
    for source in SOURCES:
        entities = [e for e in ENTITIES if e.source == source]
        audit, bad = [], []
        for i, e in enumerate(entities):
            q = quarantined.get(source, 0) if i == 0 else 0
            audit.append({"entity": e.name, "file": f"{source}/{e.name}.csv", "rows_read": 1000,
                          "rows_loaded": 1000 - q, "rows_quarantined": q, "rows_deduplicated": 0,
                          "duration_seconds": 0.1, "status": "loaded", "error": None, "load_id": load_id,
                          "loaded_at": loaded_at})
            bad += [{"entity": e.name, "file": f"{source}/{e.name}.csv", "line": k + 2, "column_name": "country",
                     "value": "usa", "reason": "does not match ^[A-Z]{2}$",
                     "record": f'{{"account_id": "A{k:04d}", "country": "usa"}}'} for k in range(q)]
            part = lake.partition_dir(settings.lake, e, run_date)
            part.mkdir(parents=True)
            if e.kind == "events":
                occurred = [dt.datetime.combine(run_date, dt.time(20)) - dt.timedelta(hours=h) for h in range(5)]
                table = pa.table({"event_id": [f"E{h}" for h in range(5)], "account_id": ["A0001"] * 5,
                                  "user_id": ["U1"] * 5, "event_name": ["login"] * 5,
                                  "feature": pa.nulls(5, pa.string()),
                                  "occurred_at": pa.array(occurred, pa.timestamp("us"))})
            else:
                table = pa.table({e.key: pa.array([], pa.string())})
            pq.write_table(table, part / lake.part_file_name(load_id, 0))
        for directory, name, rows, schema in (
            (lake.audit_dir(settings.lake, run_date, source), f"audit-{load_id}.parquet", audit, lake.AUDIT_SCHEMA),
            (lake.quarantine_dir(settings.lake, run_date, source), f"q-{load_id}.parquet", bad,
             lake.QUARANTINE_SCHEMA),
        ):
            directory.mkdir(parents=True)
            pq.write_table(pa.Table.from_pylist(rows, schema=schema), directory / name)
