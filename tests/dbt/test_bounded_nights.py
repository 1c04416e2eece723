"""A night reads only what it must (issue 11): the as-of date's inputs and the previous
night, never the whole daily history, and the compact segment history gives the same
monthly membership as every daily row.

Both on the real warehouse of ``real_nights`` (two nights of 40 accounts), with the real
dbt and DuckDB:

* the daily history gets an old partition of nonsense (segment values no model could
  produce) far before the nights; rebuilding the last night must not show it in the
  segment history. A model that reads every daily row (as the monthly segment
  membership did) puts it in its output.
* the daily history gets two months of varied nights (values that change, a missed
  night, days without a live subscription or a tier); the compact paths (segment run
  bounds -> runs -> monthly membership; tier changes -> tier periods) must give exactly
  what the reference implementations over every daily row give
  (``analyses/*_from_daily_rows.sql``, the models as they were before), and the compact
  history recorded night by night must equal what a first build derives from the whole
  history.
"""

from __future__ import annotations

import datetime as dt

import duckdb

from pipelines.build.dbt import DbtSession, dbt_session, run_dbt, target_dir
from pipelines.settings import Settings
from tests.conftest import RealNights

DAILY_MARTS = ("fct_account_tiers_daily", "fct_account_health_daily", "fct_account_segments_daily")
#: Tables holding one partition per as-of date that later nights read.
PARTITIONED = (
    ("intermediate", "int_account_tiers_assigned"),
    ("intermediate", "int_account_signal_states"),
    ("intermediate", "int_account_health_scored"),
    ("intermediate", "int_account_segments_classified"),
    *(("marts", mart) for mart in DAILY_MARTS),
)
NIGHT_MODELS = (
    "--select",
    "int_account_tiers_assigned+",
    "int_account_signal_states+",
    "int_account_segment_run_bounds+",
    "--exclude",
    "resource_type:test",
    "resource_type:unit_test",
)
BOGUS = "bogus-segment"


def _columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[str]:
    return [r[0] for r in con.execute(
        "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
        "order by ordinal_position", [schema, table]).fetchall()]


def _copy_partition(con: duckdb.DuckDBPyConnection, schema: str, table: str, source: dt.date, targets: str,
                    overrides: dict[str, str]) -> None:
    """Insert copies of ``source``'s partition at the dates ``targets`` (a SQL list of day offsets
    ``k``, as_of_date = source - k), with column expressions ``overrides``."""
    columns = _columns(con, schema, table)
    select = ", ".join(
        "cast(as_of_date - cast(k as integer) as date) as as_of_date" if c == "as_of_date" else overrides.get(c, f'"{c}"')
        for c in columns
    )
    con.execute(f'insert into {schema}."{table}" select {select} from {schema}."{table}", '
                f"(select unnest({targets}) as k) where as_of_date = ?", [source])


def test_a_night_does_not_read_old_partitions(real_home: RealNights) -> None:
    settings, first, last = real_home.settings, real_home.run_dates[0], real_home.last
    old = 400  # days before the first night: outside every lookback window
    with duckdb.connect(str(settings.warehouse)) as con:
        for schema, table in PARTITIONED:
            columns = _columns(con, schema, table)
            overrides = {c: f"'{BOGUS}'" for c in (
                "assigned_tier", "health_status", "value_band", "company_size_band", "industry_group", "region",
                "plan_name", "adoption_stage") if c in columns}
            _copy_partition(con, schema, table, first, f"[{old}]", overrides)

    run_dbt(settings, last, "build", *NIGHT_MODELS)

    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        seen = {
            relation: con.execute(f"select count(*) from {relation} where segment_value = ?", [BOGUS]).fetchone()[0]
            for relation in ("intermediate.int_account_segment_runs", "intermediate.int_account_segments_monthly")
        }
    assert seen == dict.fromkeys(seen, 0)


def _references(settings: Settings, run_date: dt.date, *analyses: str,
                dbt: DbtSession | None = None) -> dict[str, list[tuple]]:
    """What each reference analysis (the model as it was, over every daily row) gives; one dbt
    compile for all of them."""
    run_dbt(settings, run_date, "compile", "--select", *analyses, session=dbt)
    out = {}
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        for analysis in analyses:
            compiled = next(target_dir(settings).glob(f"compiled/**/{analysis}.sql"))
            out[analysis] = con.execute(f"select * from ({compiled.read_text()}) order by all").fetchall()
    return out


#: What int_account_segments_monthly records to keep closed months (not membership).
MONTHLY_BOOKKEEPING = ("inputs_fingerprint", "computed_as_of_date")


def _table(settings: Settings, relation: str, bookkeeping: tuple[str, ...] = ()) -> list[tuple]:
    exclude = f" exclude ({', '.join(bookkeeping)})" if bookkeeping else ""
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        return con.execute(f"select *{exclude} from {relation} order by all").fetchall()


COMPACT_MODELS = (
    "int_account_segment_run_bounds",
    "int_account_segment_runs",
    "int_account_segments_monthly",
    "int_account_tier_changes",
    "int_account_tier_periods_derived",
)
CHANGES = ("int_account_segment_run_bounds", "int_account_tier_changes")


def test_compact_history_gives_what_every_daily_row_gives(real_home: RealNights) -> None:
    settings, first, last = real_home.settings, real_home.run_dates[0], real_home.last
    # Two months of nights before the first one, copied from it with varied values: health
    # and tier change every few days (staggered by account), a night is missing (day 20),
    # accounts are not live on some days (their live-only dimensions drop out, firmographics
    # stay) and some days have no tier.
    offsets = str([k for k in range(1, 62) if k != 20])
    varied = "(hash(account_id) + cast(k as ubigint)) % {n} = 0"
    with duckdb.connect(str(settings.warehouse)) as con:
        for mart in DAILY_MARTS:
            columns = _columns(con, "marts", mart)
            overrides = {}
            if "health_status" in columns:
                overrides["health_status"] = (
                    f"case when {varied.format(n=5)} then 'critical' else health_status end as health_status")
            if "assigned_tier" in columns:
                overrides["assigned_tier"] = (
                    f"case when {varied.format(n=9)} then 'Core' else assigned_tier end as assigned_tier")
            if "region" in columns:
                overrides["region"] = "case when k > 40 then 'EMEA' else region end as region"
            if "account_status" in columns:
                overrides["account_status"] = (
                    f"case when {varied.format(n=13)} then 'churned' else account_status end as account_status")
            _copy_partition(con, "marts", mart, first, offsets, overrides)
        _copy_partition(con, "intermediate", "int_account_tiers_assigned", first, offsets, {
            "assigned_tier_number": (f"case when {varied.format(n=11)} then null when {varied.format(n=6)} then 2 "
                                     "else assigned_tier_number end as assigned_tier_number"),
            "assigned_tier": (f"case when {varied.format(n=11)} then null when {varied.format(n=6)} then 'Core' "
                              "else assigned_tier end as assigned_tier"),
        })

    # one dbt process for the five commands below (it loads the project once; between two
    # commands it holds no handle on the warehouse, which the test reads)
    with dbt_session(settings) as dbt:
        # Night by night: the compact history of the night before the last (a first build
        # from the whole history), then the last night's (incremental).
        run_dbt(settings, last - dt.timedelta(days=1), "run", "--select", *CHANGES, "--full-refresh", session=dbt)
        run_dbt(settings, last, "run", "--select", *COMPACT_MODELS, session=dbt)
        nightly = {model: _table(settings, f"intermediate.{model}") for model in CHANGES}
        # The planted history lies in months the nights closed, which the monthly membership keeps
        # (no night rewrites the past of the daily marts): rebuild it whole from the compact runs.
        run_dbt(settings, last, "run", "--select", "int_account_segments_monthly", "--full-refresh", session=dbt)

        reference = _references(settings, last, "segments_monthly_from_daily_rows", "tier_periods_from_daily_rows",
                                dbt=dbt)
        assert _table(settings, "intermediate.int_account_segments_monthly", MONTHLY_BOOKKEEPING) == reference[
            "segments_monthly_from_daily_rows"]
        assert _table(settings, "intermediate.int_account_tier_periods_derived") == reference[
            "tier_periods_from_daily_rows"]
        assert any(row[2] == "end" for row in nightly["int_account_segment_run_bounds"])

        # A first build derives the same compact history from the whole history.
        run_dbt(settings, last, "run", "--select", *CHANGES, "--full-refresh", session=dbt)
    assert {model: _table(settings, f"intermediate.{model}") for model in CHANGES} == nightly
