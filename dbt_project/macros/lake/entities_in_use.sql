{#- Entities in use (setting entities_in_use, docs/configuration.md "Entities in use"): the
    pipeline passes the raw tables of the entities that are off in SEGMENT_MART_DBT_ENTITIES_OFF
    (comma separated, e.g. `crm__nps_responses,billing__invoices`; pipelines/duck.py). An entity
    that is off may be absent from the raw lake: its staging model reads no source and is an
    empty relation of the source's columns (empty_raw_relation), so every health component fed
    only by it is missing for every account (its weight goes to the components present). -#}

{#- True unless the raw table `name` (`<source>__<entity>`) is off. -#}
{% macro entity_in_use(name) -%}
    {{ return(name not in env_var('SEGMENT_MART_DBT_ENTITIES_OFF', '').split(',')) }}
{%- endmacro %}

{#- An empty relation with the columns and types of raw source `name`, as its YAML declares
    them (`data_type`, from the extract contract: tests/unit/test_contract.py keeps them in
    step). Portable: a derived table filtered to nothing, no FROM needed on DuckDB or Spark. -#}
{% macro empty_raw_relation(name) -%}
    {%- set node = graph.sources.get('source.' ~ project_name ~ '.raw.' ~ name) if execute else none -%}
    select * from (
        select
        {%- if node %}
        {%- for column in node.columns.values() %}
            cast(null as {{ column.data_type }}) as {{ column.name }}{% if not loop.last %},{% endif %}
        {%- endfor %}
        {%- else %}
            cast(null as date) as _run_date
        {%- endif %}
    ) as empty_relation
    where 1 = 0
{%- endmacro %}

{#- The rows of full-snapshot raw table `name` as of the run (latest_snapshot), or an empty
    relation of its columns when the entity is off. -#}
{% macro raw_snapshot(name) -%}
    {%- if entity_in_use(name) -%}
        {{ latest_snapshot(source('raw', name)) }}
    {%- else -%}
        {{ empty_raw_relation(name) }}
    {%- endif -%}
{%- endmacro %}
