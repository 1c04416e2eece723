{#- The run's as-of date as a SQL date literal. Every model keys on this, never on
    the wall clock, so re-running a date gives the same tables. -#}
{% macro as_of_date() -%}
    cast('{{ as_of_date_string() }}' as date)
{%- endmacro %}

{#- The run's as-of date, 'YYYY-MM-DD'. Read it through this macro, never as
    var('as_of_date'): the pipeline passes the night's date in the environment variable
    DBT_ENV_CUSTOM_ENV_SEGMENT_MART_AS_OF_DATE (pipelines/build/dbt.py), not in --vars, so that
    dbt re-uses its saved parse night after night. dbt re-parses everything when --vars
    change (dbt/parser/manifest.py, is_partial_parsable: "config vars ... have changed"),
    and re-parses every file whose parse read an env_var when its value changes
    (dbt/parser/partial.py, build_env_vars_to_files). So the variable is read only when
    dbt executes (`execute`), never while it parses: the parse does not depend on the
    night at all. (The DBT_ENV_CUSTOM_ENV_ prefix also records the date in the metadata
    of dbt's artifacts: pipelines/build/dbt_results.py reads it from run_results.json.)
    An as_of_date var still wins (`dbt build --vars '{as_of_date: 2026-03-06}'` by hand,
    the policy lab, unit tests' overrides). Nothing may capture the date at parse time:
    a test's `where:` config is rendered while parsing, so a night's slice is chosen in
    get_where_subquery (meta partition_date_column), at run time. -#}
{% macro as_of_date_string() -%}
    {%- set given = var('as_of_date', none) -%}
    {%- if given is not none -%}
        {{- return(given | string) -}}
    {%- endif -%}
    {%- if not execute -%}
        {#- parse time: any valid date; nothing rendered now is kept -#}
        {{- return('1970-01-01') -}}
    {%- endif -%}
    {%- set night = env_var('DBT_ENV_CUSTOM_ENV_SEGMENT_MART_AS_OF_DATE', '') -%}
    {%- if not night -%}
        {{- exceptions.raise_compiler_error(
            "No as-of date for this run: the pipeline sets DBT_ENV_CUSTOM_ENV_SEGMENT_MART_AS_OF_DATE "
            ~ "(segment-mart build --run-date YYYY-MM-DD); by hand, pass --vars '{as_of_date: YYYY-MM-DD}'") -}}
    {%- endif -%}
    {{- return(night) -}}
{%- endmacro %}

{#- The drop date the snapshots are read as of: the as-of date, except on a backtest
    point (`segment-mart backtest`, var snapshot_date set): the health of a past date
    scored from the first drop delivered after it. Staging then keeps only rows dated on
    or before the as-of date and puts statuses back to what they were on it (macro
    is_backtest_point; doc block health_backtest). -#}
{% macro snapshot_date() -%}
    {{- var('snapshot_date', none) or as_of_date_string() -}}
{%- endmacro %}

{% macro is_backtest_point() -%}
    {{- return(var('snapshot_date', none) is not none and var('snapshot_date') | string > as_of_date_string()) -}}
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
