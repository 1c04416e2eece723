{#- The run's as-of date as a SQL date literal. Every model keys on this, never on
    the wall clock, so re-running a date gives the same tables. -#}
{% macro as_of_date() -%}
    cast('{{ var("as_of_date") }}' as date)
{%- endmacro %}

{#- The drop date the snapshots are read as of: the as-of date, except on a backtest
    point (`segment-mart backtest`, var snapshot_date set): the health of a past date
    scored from the first drop delivered after it. Staging then keeps only rows dated on
    or before the as-of date and puts statuses back to what they were on it (macro
    is_backtest_point; doc block health_backtest). -#}
{% macro snapshot_date() -%}
    {{- var('snapshot_date', none) or var('as_of_date') -}}
{%- endmacro %}

{% macro is_backtest_point() -%}
    {{- return(var('snapshot_date', none) is not none and var('snapshot_date') | string > var('as_of_date') | string) -}}
{%- endmacro %}

{#- Rows of a full-snapshot raw table as of the run: the latest drop on or before
    the as-of date (the snapshot date on a backtest point). A drop that delivered zero rows is still the latest drop (the
    intake checks fail such a night before dbt runs): the snapshot is never taken
    from an older drop because the newest one is empty. -#}
{% macro latest_snapshot(relation) -%}
    {{ return(adapter.dispatch('latest_snapshot')(relation)) }}
{%- endmacro %}

{#- Portable form: the newest run date with rows. -#}
{% macro default__latest_snapshot(relation) -%}
    select *
    from {{ relation }}
    where _run_date = (
        select max(_run_date)
        from {{ relation }}
        where _run_date <= cast('{{ snapshot_date() }}' as date)
    )
{%- endmacro %}

{#- DuckDB over the raw lake: the newest partition folder on or before the as-of date,
    found from the file names (an empty partition counts), and inlined as a literal so
    that read_parquet opens that one partition only. -#}
{% macro duckdb__latest_snapshot(relation) -%}
    select *
    from {{ relation }}
    where _run_date = {{ latest_partition_date(relation) }}
{%- endmacro %}

{#- The newest `_run_date=` partition of an external raw-lake relation on or before the
    as-of date, as a date literal (null when there is none, or at parse time). -#}
{% macro latest_partition_date(relation) -%}
    {%- set location = relation.external if relation.external is defined else none -%}
    {%- if not execute or not location -%}
        cast(null as date)
    {%- else -%}
        {%- set pattern = location.split("'")[1] -%}
        {%- set found = run_query(
            "select max(run_date) from (select split_part(split_part(file, '_run_date=', 2), '/', 1) as run_date "
            ~ "from glob('" ~ pattern ~ "')) where run_date <= '" ~ snapshot_date() ~ "'"
        ) -%}
        {%- set latest = found.columns[0].values()[0] if found and found.rows | length > 0 else none -%}
        {%- if latest -%}
            cast('{{ latest }}' as date)
        {%- else -%}
            cast(null as date)
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
