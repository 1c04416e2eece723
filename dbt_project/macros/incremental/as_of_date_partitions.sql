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
