{#- The continuous percentile `fraction` (0-1) of `expression` over the group, with linear
    interpolation between the closest ranks (numpy's default, `np.percentile(...,
    method='linear')`), as an aggregate. DuckDB: quantile_cont; Spark: percentile (exact,
    not percentile_approx); elsewhere the SQL standard's ordered-set aggregate. -#}
{% macro percentile_cont(expression, fraction) -%}
    {{ return(adapter.dispatch('percentile_cont')(expression, fraction)) }}
{%- endmacro %}

{% macro default__percentile_cont(expression, fraction) -%}
    percentile_cont({{ fraction }}) within group (order by {{ expression }})
{%- endmacro %}

{% macro duckdb__percentile_cont(expression, fraction) -%}
    quantile_cont({{ expression }}, {{ fraction }})
{%- endmacro %}

{% macro spark__percentile_cont(expression, fraction) -%}
    percentile({{ expression }}, {{ fraction }})
{%- endmacro %}
