{#- `with name as {{ materialized_cte() }} (...)`: DuckDB computes the CTE once, before the
    query that reads it, instead of inlining it into its readers' plan. Used where the
    inlined plan depends on estimates: int_segment_retention_periods' trailing cohort, inlined,
    let DuckDB push a partial aggregate below the join with the segments (3.1M grouped rows,
    15.9 s at 10K accounts once int_account_mrr_monthly is an incremental table, against 1.9 s
    materialized; docs/operations.md). Spark has no such hint (its CTEs are inlined). -#}
{% macro materialized_cte() -%}
    {{ return(adapter.dispatch('materialized_cte', 'segment_mart')()) }}
{%- endmacro %}

{% macro default__materialized_cte() -%}
    materialized
{%- endmacro %}

{% macro spark__materialized_cte() -%}
{%- endmacro %}

{#- `with name as {{ not_materialized_cte() }} (...)`: DuckDB inlines the CTE into each of
    its readers. DuckDB materializes every CTE read more than once (optimizer
    cte_inlining.cpp: one reference is inlined, more are kept), an import CTE too: a
    `select *` of a whole model, stored before any reader's filter or projection. Used
    where the readers filter or project differently; int_segment_retention_periods'
    imports (the membership is 16M rows at 100K accounts). Spark inlines CTEs: no hint. -#}
{% macro not_materialized_cte() -%}
    {{ return(adapter.dispatch('not_materialized_cte', 'segment_mart')()) }}
{%- endmacro %}

{% macro default__not_materialized_cte() -%}
    not materialized
{%- endmacro %}

{% macro spark__not_materialized_cte() -%}
{%- endmacro %}
