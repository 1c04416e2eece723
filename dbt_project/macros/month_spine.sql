{#- One row per month (column month_start_date, a date) from the month of `start_date`
    to the month of `end_date`, both included; no row when either is null or the start
    is after the end. Both arguments are SQL expressions (a literal, a column-free scalar
    subquery, ...). The spine is bounded by the data: it holds exactly the months
    asked for (the engines' own series generators; a portable numbers table elsewhere).
    Tested by data-tests/assert_revenue_month_spine.sql. -#}
{% macro month_spine(start_date, end_date) -%}
    {{ return(adapter.dispatch('month_spine', 'segment_mart')(start_date, end_date)) }}
{%- endmacro %}

{% macro duckdb__month_spine(start_date, end_date) -%}
    select cast(month_start as date) as month_start_date
    from (
        select unnest(generate_series(
            cast({{ dbt.date_trunc('month', start_date) }} as date),
            cast({{ dbt.date_trunc('month', end_date) }} as date),
            interval 1 month
        )) as month_start
    ) as months
{%- endmacro %}

{% macro spark__month_spine(start_date, end_date) -%}
    select cast(month_start as date) as month_start_date
    from (
        select explode(sequence(
            cast({{ dbt.date_trunc('month', start_date) }} as date),
            cast({{ dbt.date_trunc('month', end_date) }} as date),
            interval 1 month
        )) as month_start
    ) as months
{%- endmacro %}

{#- Any other adapter: a numbers table of cross-joined digits (up to 10,000 months). -#}
{% macro default__month_spine(start_date, end_date) -%}
    select
        cast({{ dbt.dateadd('month', 'month_offsets.month_offset', dbt.date_trunc('month', start_date)) }} as date)
            as month_start_date
    from (
        select
            units.digit + 10 * tens.digit + 100 * hundreds.digit + 1000 * thousands.digit
                as month_offset
        from (
            select 0 as digit union all select 1 union all select 2 union all select 3
            union all select 4 union all select 5 union all select 6 union all select 7
            union all select 8 union all select 9
        ) as units
        cross join (
            select 0 as digit union all select 1 union all select 2 union all select 3
            union all select 4 union all select 5 union all select 6 union all select 7
            union all select 8 union all select 9
        ) as tens
        cross join (
            select 0 as digit union all select 1 union all select 2 union all select 3
            union all select 4 union all select 5 union all select 6 union all select 7
            union all select 8 union all select 9
        ) as hundreds
        cross join (
            select 0 as digit union all select 1 union all select 2 union all select 3
            union all select 4 union all select 5 union all select 6 union all select 7
            union all select 8 union all select 9
        ) as thousands
    ) as month_offsets
    where {{ dbt.dateadd('month', 'month_offsets.month_offset', dbt.date_trunc('month', start_date)) }}
        <= {{ dbt.date_trunc('month', end_date) }}
{%- endmacro %}
