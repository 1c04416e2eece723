{#- dbt's generic tests read their model through get_where_subquery (dbt's own version
    applies the test's `where` config). This project's version also narrows the tests of
    a date-partitioned model (meta partition_date_column: set by config
    date_partitioned_incremental, and on stg_usage__events, whose events are partitioned
    by the drop that loaded them; and the raw lake's sources, partitioned by drop) to the
    run's slice, chosen here at run time (a `where:` config naming the as-of date would be
    rendered once, when dbt parses: macros/as_of_date.sql): a night's tests check what the
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
        {%- do filters.append(date_column ~ " = " ~ as_of_date()) -%}
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

{#- The partition_date_column of the model or raw source a generic test is attached to
    (none for other models and sources, and for singular tests). A raw source's comes
    from its meta (models/staging/_staging__sources.yml: the night's drop, `_run_date`). -#}
{% macro tested_partition_date_column() -%}
    {%- set attached = model.get('attached_node') if model is mapping else none -%}
    {%- if attached and attached in graph.nodes -%}
        {%- set meta = graph.nodes[attached].config.get('meta', {}) or {} -%}
        {{ return(meta.get('partition_date_column')) }}
    {%- endif -%}
    {%- if model is mapping and (model.get('file_key_name') or '').startswith('sources.') -%}
        {%- set sources = [] -%}
        {%- for unique_id in model.get('depends_on', {}).get('nodes', []) -%}
            {%- if unique_id in graph.sources -%}
                {%- do sources.append(graph.sources[unique_id]) -%}
            {%- endif -%}
        {%- endfor -%}
        {%- if sources | length == 1 -%}
            {{ return((sources[0].get('meta') or {}).get('partition_date_column')) }}
        {%- endif -%}
    {%- endif -%}
    {{ return(none) }}
{%- endmacro %}
