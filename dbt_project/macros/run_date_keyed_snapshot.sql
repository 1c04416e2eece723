{#- The select of a snapshot keyed to the run date, never the wall clock (doc block
    snapshots_keyed_to_run_date). Use with strategy='timestamp' and
    updated_at='changed_run_date': `changed_run_date` is the run date on which the
    row's current `tracked` values were first seen. An unchanged row keeps the
    changed_run_date of its current version, so it never gets a new version; a changed
    row gets `seen_on` (the drop's run date). Re-running a date (or an earlier one)
    cannot create versions. -#}
{% macro run_date_keyed_snapshot(source_relation, key, tracked, seen_on) -%}
{%- set existing = adapter.get_relation(database=this.database, schema=this.schema, identifier=this.identifier) %}
with source_rows as (
    select
        {{ key }},
        {%- for column in tracked %}
        {{ column }},
        {%- endfor %}
        cast({{ seen_on }} as {{ dbt.type_timestamp() }}) as seen_on,
        {{ dbt.hash(dbt.concat(customers_hash_parts(tracked))) }} as row_hash
    from {{ source_relation }}
),

{% if existing %}
current_versions as (
    select {{ key }}, row_hash, changed_run_date
    from {{ this }}
    where dbt_valid_to is null
),
{% else %}
current_versions as (
    select
        cast(null as {{ dbt.type_string() }}) as {{ key }},
        cast(null as {{ dbt.type_string() }}) as row_hash,
        cast(null as {{ dbt.type_timestamp() }}) as changed_run_date
    where 1 = 0
),
{% endif %}

final as (
    select
        source_rows.{{ key }},
        {%- for column in tracked %}
        source_rows.{{ column }},
        {%- endfor %}
        source_rows.row_hash,
        case
            when current_versions.row_hash = source_rows.row_hash then current_versions.changed_run_date
            else source_rows.seen_on
        end as changed_run_date
    from source_rows
    left join current_versions
        on source_rows.{{ key }} = current_versions.{{ key }}
)

select * from final
{%- endmacro %}
