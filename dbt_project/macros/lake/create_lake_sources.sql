{#- The raw layer on Spark: one table per `raw` source over its folder of the raw lake
    (<lake>/raw/<source>/<entity>/_run_date=YYYY-MM-DD/*.parquet, written by ingestion;
    <lake> = setting lake_dir, passed as SEGMENT_MART_DBT_LAKE). Called by
    on-run-start, so every run re-creates them and sees the partitions written since.
    Creating the table infers the partition column from the folders (_run_date, typed
    DATE by partition type inference) but registers no partition in the metastore: a
    query would see no row (and every test on it would pass) until ALTER TABLE ..
    RECOVER PARTITIONS lists them. mergeSchema: extra extract columns may come
    and go between nights. Source names are `<source>__<entity>`.
    On DuckDB the same sources resolve without this (dbt-duckdb: the raw tables, or the
    Parquet folders through the sources' external_location). An entity that is off
    (macros/lake/entities_in_use.sql) gets no table: its folder may not exist. -#}
{% macro create_lake_sources() -%}
    {{ return(adapter.dispatch('create_lake_sources', 'segment_mart')()) }}
{%- endmacro %}

{% macro default__create_lake_sources() -%}
    select 1
{%- endmacro %}

{% macro spark__create_lake_sources() -%}
    {%- if execute -%}
        {%- set lake = env_var('SEGMENT_MART_DBT_LAKE', '../var/lake') -%}
        {%- set schemas = [] -%}
        {%- for source in graph.sources.values() if source.source_name == 'raw' and entity_in_use(source.name) -%}
            {%- set parts = source.name.split('__') -%}
            {%- set folder = lake ~ '/raw/' ~ parts[0] ~ '/' ~ parts[1] -%}
            {%- if source.schema not in schemas -%}
                {%- do run_query('create database if not exists ' ~ source.schema) -%}
                {%- do schemas.append(source.schema) -%}
            {%- endif -%}
            {%- do run_query('drop table if exists ' ~ source.schema ~ '.' ~ source.identifier) -%}
            {%- do run_query(
                'create table ' ~ source.schema ~ '.' ~ source.identifier
                ~ " using parquet options (path '" ~ folder ~ "', mergeSchema 'true')"
            ) -%}
            {%- do run_query('alter table ' ~ source.schema ~ '.' ~ source.identifier ~ ' recover partitions') -%}
            {%- do log('raw lake: ' ~ source.schema ~ '.' ~ source.identifier ~ ' over ' ~ folder, info=false) -%}
        {%- endfor -%}
    {%- endif -%}
    select 1
{%- endmacro %}
