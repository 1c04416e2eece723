{#- The daily models hold one slice of rows per as-of date (or per run date) and each
    run replaces its own slice, so a rerun or a backfill of a date is idempotent. The
    same models run on both engines; only the way a slice is replaced differs:
    - DuckDB: delete+insert keyed on the date, after a pre-hook that deletes the slice
      (delete+insert alone only deletes keys present in the new rows);
    - Spark (plain Parquet, no MERGE/DELETE): a table partitioned by the date and
      insert_overwrite, which replaces exactly the partitions the new rows fall in
      (dbt-spark sets spark.sql.sources.partitionOverwriteMode=dynamic), after a pre-hook
      that drops the slice's partition (so a slice that comes out empty is emptied too).
    Usage: {{ config(date_partitioned_incremental('as_of_date')) }}
    Such a model (one slice per date, replaced whole) is tagged with meta
    partition_date_column, and its generic data tests check the run's slice only
    (macros/generic_tests/get_where_subquery.sql). -#}
{% macro date_partitioned_incremental(date_column, unique_key=none) -%}
    {{ return(adapter.dispatch('date_partitioned_incremental', 'segment_mart')(date_column, unique_key)) }}
{%- endmacro %}

{% macro default__date_partitioned_incremental(date_column, unique_key) -%}
    {%- set config = {
        'materialized': 'incremental',
        'incremental_strategy': 'delete+insert',
        'unique_key': unique_key or date_column,
        'on_schema_change': 'append_new_columns',
    } -%}
    {%- if not unique_key -%}
        {%- do config.update({
            'pre_hook': "{{ delete_date_partition('" ~ date_column ~ "') }}",
            'meta': {'partition_date_column': date_column},
        }) -%}
    {%- endif -%}
    {{ return(config) }}
{%- endmacro %}

{% macro spark__date_partitioned_incremental(date_column, unique_key) -%}
    {%- set config = {
        'materialized': 'incremental',
        'incremental_strategy': 'insert_overwrite',
        'partition_by': [date_column],
        'file_format': 'parquet',
        'on_schema_change': 'append_new_columns',
    } -%}
    {%- if not unique_key -%}
        {%- do config.update({
            'pre_hook': "{{ delete_date_partition('" ~ date_column ~ "') }}",
            'meta': {'partition_date_column': date_column},
        }) -%}
    {%- endif -%}
    {{ return(config) }}
{%- endmacro %}

{#- Pre-hook: on an incremental run, empty the slice of the as-of date first. -#}
{% macro delete_date_partition(date_column) -%}
    {%- if is_incremental() -%}
        {{ adapter.dispatch('delete_date_partition', 'segment_mart')(date_column) }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{% macro default__delete_date_partition(date_column) -%}
    delete from {{ this }} where {{ date_column }} = {{ as_of_date() }}
{%- endmacro %}

{% macro spark__delete_date_partition(date_column) -%}
    alter table {{ this }} drop if exists partition ({{ date_column }} = date'{{ as_of_date_string() }}')
{%- endmacro %}

{#- What int_usage_account_days_aggregated recomputes on an incremental run: the
    (account, activity date) pairs the night's events touched (DuckDB deletes and
    re-inserts those rows), or whole activity dates (Spark overwrites partitions). -#}
{% macro usage_recompute_keys() -%}
    {{ return(adapter.dispatch('usage_recompute_keys', 'segment_mart')()) }}
{%- endmacro %}

{% macro default__usage_recompute_keys() -%}
    {{ return(['account_id', 'occurred_date']) }}
{%- endmacro %}

{% macro spark__usage_recompute_keys() -%}
    {{ return(['occurred_date']) }}
{%- endmacro %}

{#- The latest partition of a date-partitioned relation before the as-of date, as a
    'YYYY-MM-DD' string (none on a first build, at parse time, or when there is none):
    the previous night. Found at compile time so that the model's scan of that night is
    a filter on a literal, which both engines prune to the one partition (a subquery in
    the filter would make DuckDB read every partition's rows and Spark list them).
    A night's incremental models read this partition, not the whole history: an account
    missing from the previous night (deleted from the CRM extract and restored later)
    starts again as a new account. -#}
{% macro previous_partition_date(relation, date_column='as_of_date') -%}
    {%- if not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set found = run_query(
        "select cast(max(" ~ date_column ~ ") as " ~ dbt.type_string() ~ ") from " ~ relation
        ~ " where " ~ date_column ~ " < " ~ as_of_date()
    ) -%}
    {%- set latest = found.columns[0].values()[0] if found and found.rows | length > 0 else none -%}
    {{ return(latest if latest else none) }}
{%- endmacro %}

{#- Models that keep closed months: one slice per month (column `month_column`, the
    month's first day); a night recomputes the months it can change and keeps the
    others. The month before the as-of date's is always recomputed (a night early in a
    month closes the previous one); the model decides which older months it adds.
    - DuckDB: delete+insert keyed on the month, after a pre-hook that deletes the
      previous month and everything after it (so a month that comes out empty, or a
      month a replay removes, is emptied too);
    - Spark: a table partitioned by the month and insert_overwrite of the months the new
      rows fall in (a month that comes out empty keeps its old partition there).
    Usage: {{ config(closed_month_incremental('point_month_start_date')) }} -#}
{% macro closed_month_incremental(month_column) -%}
    {{ return(adapter.dispatch('closed_month_incremental', 'segment_mart')(month_column)) }}
{%- endmacro %}

{% macro default__closed_month_incremental(month_column) -%}
    {{ return({
        'materialized': 'incremental',
        'incremental_strategy': 'delete+insert',
        'unique_key': month_column,
        'on_schema_change': 'append_new_columns',
        'pre_hook': "{{ delete_open_months('" ~ month_column ~ "') }}",
    }) }}
{%- endmacro %}

{% macro spark__closed_month_incremental(month_column) -%}
    {{ return({
        'materialized': 'incremental',
        'incremental_strategy': 'insert_overwrite',
        'partition_by': [month_column],
        'file_format': 'parquet',
        'on_schema_change': 'append_new_columns',
    }) }}
{%- endmacro %}

{#- 'YYYY-MM-01' of the as-of date's month, and of the month before it. -#}
{% macro as_of_month_string(months_back=0) -%}
    {%- set day = modules.datetime.date.fromisoformat(as_of_date_string()).replace(day=1) -%}
    {%- for _ in range(months_back) -%}
        {%- set day = (day - modules.datetime.timedelta(days=1)).replace(day=1) -%}
    {%- endfor -%}
    {{- return(day.isoformat()) -}}
{%- endmacro %}

{% macro delete_open_months(month_column) -%}
    {%- if is_incremental() -%}
        delete from {{ this }} where {{ month_column }} >= cast('{{ as_of_month_string(1) }}' as date)
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{#- The first month an incremental run of a closed-month model recomputes, 'YYYY-MM-01':
    the month before the as-of date's, or the month after the latest month kept before it
    when that is earlier (nights that jumped a month); none on a first build, at parse time
    or when nothing is kept (then every month is computed). -#}
{% macro first_month_to_recompute(month_column) -%}
    {%- if not execute or not is_incremental() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set previous_month = as_of_month_string(1) -%}
    {%- set found = run_query(
        "select cast(max(" ~ month_column ~ ") as " ~ dbt.type_string() ~ ") from " ~ this
        ~ " where " ~ month_column ~ " < cast('" ~ previous_month ~ "' as date)"
    ) -%}
    {%- set kept = found.columns[0].values()[0] if found and found.rows | length > 0 else none -%}
    {%- if not kept -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set after_kept = (modules.datetime.date.fromisoformat(kept[:10]) + modules.datetime.timedelta(days=32)).replace(day=1).isoformat() -%}
    {{ return([after_kept, previous_month] | min) }}
{%- endmacro %}
