{#- Spark versions of dbt's cross-database date macros, found first through the
    `dispatch` search order in dbt_project.yml. dbt-spark 1.11's own versions are wrong
    or unsafe for this project:
    - spark__datediff('month') is floor(months_between(..)) + a CASE, not parenthesised,
      so `floor(datediff(..) / n)` divided only the CASE (renewal dates in 2028-2047);
      months_between also treats two month-ends as whole months, so 2025-01-31 ->
      2025-02-28 counted 2 months where DuckDB counts 1 (month boundaries crossed).
    - its date arithmetic wraps every argument in assert_not_null(), which raises on a
      null even inside a CASE branch that is not taken.
    These follow DuckDB's semantics: datediff counts boundaries crossed
    (datediff('month', 2025-01-31, 2025-02-01) = 1), dateadd clamps to the month end
    (2025-01-31 + 1 month = 2025-02-28), date_trunc of a date is a date. Every result is
    parenthesised so it can stand in arithmetic. -#}

{% macro spark__datediff(first_date, second_date, datepart) -%}
    {%- if datepart == 'day' -%}
        (datediff(cast({{ second_date }} as date), cast({{ first_date }} as date)))
    {%- elif datepart == 'month' -%}
        ((year({{ second_date }}) - year({{ first_date }})) * 12 + (month({{ second_date }}) - month({{ first_date }})))
    {%- elif datepart == 'quarter' -%}
        ((year({{ second_date }}) - year({{ first_date }})) * 4 + (quarter({{ second_date }}) - quarter({{ first_date }})))
    {%- elif datepart == 'year' -%}
        (year({{ second_date }}) - year({{ first_date }}))
    {%- elif datepart in ('hour', 'minute', 'second') -%}
        (timestampdiff({{ datepart | upper }}, {{ first_date }}, {{ second_date }}))
    {%- else -%}
        {{ exceptions.raise_compiler_error("spark__datediff: datepart " ~ datepart ~ " is not implemented") }}
    {%- endif -%}
{%- endmacro %}

{% macro spark__dateadd(datepart, interval, from_date_or_timestamp) -%}
    (timestampadd({{ datepart | upper }}, cast({{ interval }} as int), {{ from_date_or_timestamp }}))
{%- endmacro %}

{% macro spark__date_trunc(datepart, date) -%}
    {%- if datepart in ('month', 'quarter', 'year') -%}
        (trunc({{ date }}, '{{ datepart }}'))
    {%- else -%}
        (date_trunc('{{ datepart }}', {{ date }}))
    {%- endif -%}
{%- endmacro %}

{#- dbt-spark ignores the order of listagg (collect_list's order is whatever the
    shuffle gives): sort by the ordering expression explicitly. Supports
    `order by <expression>` (ascending), which is all this project uses. -#}
{% macro spark__listagg(measure, delimiter_text, order_by_clause, limit_num) -%}
    {%- if order_by_clause -%}
        {%- set order_expression = order_by_clause | trim -%}
        {%- if not order_expression.lower().startswith('order by ')
               or ' desc' in order_expression.lower() or ',' in order_expression -%}
            {{ exceptions.raise_compiler_error("spark__listagg supports one ascending 'order by <expression>', got: " ~ order_by_clause) }}
        {%- endif -%}
        {%- set order_expression = order_expression[9:] -%}
        {%- set collected = 'transform(array_sort(collect_list(struct(' ~ order_expression ~ ' as sort_key, ' ~ measure ~ ' as item))), x -> x.item)' -%}
    {%- else -%}
        {%- set collected = 'collect_list(' ~ measure ~ ')' -%}
    {%- endif -%}
    {%- if limit_num -%}
        {%- set collected = 'slice(' ~ collected ~ ', 1, ' ~ limit_num ~ ')' -%}
    {%- endif -%}
    (array_join({{ collected }}, {{ delimiter_text }}))
{%- endmacro %}
