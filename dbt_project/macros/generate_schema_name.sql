{#- Custom schemas are used as named (staging, intermediate, marts, config, snapshots),
    not prefixed with the target schema: BI reads `marts.<model>`. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
