{#- Round a DOUBLE to `digits` decimals alike on every engine. round(double, n) differs:
    DuckDB rounds x * 10^n (so 0.15, stored as 0.1499999..., gives 0.2), Spark rounds the
    exact binary value (0.1); health scores rounded to 0.1 came out 0.1 apart on some rows.
    Going through DECIMAL(38, 10) first rounds half away from zero on the decimal value on
    both. -#}
{% macro round_decimal(expression, digits) -%}
    round(cast({{ expression }} as decimal(38, 10)), {{ digits }})
{%- endmacro %}
