{#- The run's as-of date as a SQL date literal. Every model keys on this, never on
    the wall clock, so re-running a date gives the same tables. -#}
{% macro as_of_date() -%}
    cast('{{ var("as_of_date") }}' as date)
{%- endmacro %}

{#- Rows of a full-snapshot raw table as of the run: the latest drop on or before
    the as-of date. -#}
{% macro latest_snapshot(relation) -%}
    select *
    from {{ relation }}
    where _run_date = (
        select max(_run_date)
        from {{ relation }}
        where _run_date <= {{ as_of_date() }}
    )
{%- endmacro %}
