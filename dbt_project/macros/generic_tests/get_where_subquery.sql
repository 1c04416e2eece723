{#- dbt's generic tests read their model through get_where_subquery (dbt's own version
    applies the test's `where` config). This project's version also narrows the tests of
    a date-partitioned model (meta partition_date_column: set by config
    date_partitioned_incremental, and on stg_usage__events, whose events are partitioned
    by the drop that loaded them) to the run's slice: a night's tests check what the
    night wrote, and the earlier slices, checked on their own nights and never rewritten
    by a later one, are not scanned again. Without it the ~100 tests on the daily models read
    every night of history, every night (at 100K accounts a year is 36.5M rows per model).
    A first build or a full refresh writes every slice but tests the run's own.
    The relation gets an explicit alias: Spark (non-ANSI mode) reads `t where (x)` as the
    table t aliased `where` with a column list `(x)`, and fails with ASSIGNMENT_ARITY_MISMATCH
    (found by the parity test on `where: is_current`). -#}
{% macro default__get_where_subquery(relation) -%}
    {%- set filters = [] -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}
        {%- do filters.append('(' ~ where ~ ')') -%}
    {%- endif -%}
    {%- set date_column = tested_partition_date_column() -%}
    {%- if date_column -%}
        {%- do filters.append(date_column ~ " = cast('" ~ var('as_of_date') ~ "' as date)") -%}
    {%- endif -%}
    {%- if filters -%}
        {%- set filtered -%}
            (select * from {{ relation }} as dbt_tested where {{ filters | join(' and ') }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}

{#- The partition_date_column of the model a generic test is attached to (none for
    other models and for singular tests). -#}
{% macro tested_partition_date_column() -%}
    {%- set attached = model.get('attached_node') if model is mapping else none -%}
    {%- if not attached or attached not in graph.nodes -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set meta = graph.nodes[attached].config.get('meta', {}) or {} -%}
    {{ return(meta.get('partition_date_column')) }}
{%- endmacro %}
