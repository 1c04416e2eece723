{#- The continuous percentile `fraction` (0-1) of `expression` over the group, with linear
    interpolation between the closest ranks (numpy's default, `np.percentile(...,
    method='linear')`), as an aggregate. DuckDB: quantile_cont; Spark: percentile (exact,
    not percentile_approx); elsewhere the SQL standard's ordered-set aggregate.
    The interpolation is done in DOUBLE on every engine and returned as DECIMAL(38, 10), which
    the caller's cast to its contract's scale rounds half away from zero alike on both (as
    round_decimal does): DuckDB's quantile_cont on a DECIMAL interpolates in the column's own
    decimal type and truncates (63331.80 for 63331.809), while Spark's percentile returns a
    DOUBLE that the cast rounds (63331.81); the parity test found the published ARR p90 a cent
    apart. -#}
{% macro percentile_cont(expression, fraction) -%}
    {{ return(adapter.dispatch('percentile_cont')(expression, fraction)) }}
{%- endmacro %}

{% macro default__percentile_cont(expression, fraction) -%}
    cast(percentile_cont({{ fraction }}) within group (order by cast({{ expression }} as {{ dbt.type_float() }}))
        as decimal(38, 10))
{%- endmacro %}

{% macro duckdb__percentile_cont(expression, fraction) -%}
    cast(quantile_cont(cast({{ expression }} as double), {{ fraction }}) as decimal(38, 10))
{%- endmacro %}

{% macro spark__percentile_cont(expression, fraction) -%}
    cast(percentile(cast({{ expression }} as double), {{ fraction }}) as decimal(38, 10))
{%- endmacro %}
