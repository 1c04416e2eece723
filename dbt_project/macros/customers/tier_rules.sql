{#- Pieces of the tier rules (int_account_tiers_computed) that depend on how an operator
    writes the rule. Numbers and lists come from vars (doc block tier_rules); these
    macros only shape SQL. -#}

{#- The ARR comparison of a Tier 1 threshold: var tier1_arr_comparison `inclusive`
    (ARR >= threshold, the default) or `strict` (ARR > threshold, as in "Tier 1 if ARR >
    $100K"). -#}
{% macro tier1_arr_operator() -%}
    {%- set comparison = var('tier1_arr_comparison') -%}
    {%- if comparison == 'inclusive' -%}>=
    {%- elif comparison == 'strict' -%}>
    {%- else -%}
        {{ exceptions.raise_compiler_error("var tier1_arr_comparison must be 'inclusive' or 'strict', got " ~ comparison) }}
    {%- endif -%}
{%- endmacro %}

{#- `expression` in the list var `values`: false for an empty list. Use 'unknown' in the
    list for a null expression when the caller coalesces to 'unknown'. -#}
{% macro tier_in_list(expression, values) -%}
    {%- if values | length == 0 -%}
        false
    {%- else -%}
        ({{ expression }} in {{ customers_in_list(values) }})
    {%- endif -%}
{%- endmacro %}

{#- An optional condition of a rule: `true` (condition switched off) when the var is
    null, else the SQL condition built by the caller. -#}
{% macro tier_optional_condition(var_name, condition_sql) -%}
    {%- if var(var_name) is none -%}
        true
    {%- else -%}
        ({{ condition_sql }})
    {%- endif -%}
{%- endmacro %}
