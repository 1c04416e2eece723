{#- SCD type 2 of CRM accounts, keyed to the run date, never the wall clock. Timestamp
    strategy with updated_at = changed_run_date: the run date (_run_date of the CRM
    drop, staging's snapshot_date) on which the row's current attribute values were
    first seen. A row whose attributes did not change keeps the changed_run_date of
    its current snapshot version, so an unchanged account never gets a new version;
    a changed one gets a version valid from that drop's run date. Re-running a date
    (or an earlier date) cannot create versions: its changed_run_date is never later
    than the current version's. Doc block snapshots_keyed_to_run_date. -#}
{% snapshot snap_crm__accounts %}
{{
    config(
        unique_key='account_id',
        strategy='timestamp',
        updated_at='changed_run_date',
    )
}}
{%- set tracked = ['account_name', 'industry', 'employee_count', 'country_code', 'created_date',
                   'csm_owner_id', 'is_marquee_logo', 'is_reference', 'is_partner', 'parent_account_id'] %}
{%- set existing = adapter.get_relation(database=this.database, schema=this.schema, identifier=this.identifier) %}

with accounts as (
    select
        account_id,
        {%- for column in tracked %}
        {{ column }},
        {%- endfor %}
        snapshot_date,
        {{ dbt.hash(dbt.concat(customers_hash_parts(tracked))) }} as row_hash
    from {{ ref('stg_crm__accounts') }}
),

{% if existing %}
current_versions as (
    select account_id, row_hash, changed_run_date
    from {{ this }}
    where dbt_valid_to is null
),
{% else %}
current_versions as (
    select
        cast(null as {{ dbt.type_string() }}) as account_id,
        cast(null as {{ dbt.type_string() }}) as row_hash,
        cast(null as {{ dbt.type_timestamp() }}) as changed_run_date
    where 1 = 0
),
{% endif %}

final as (
    select
        accounts.account_id,
        {%- for column in tracked %}
        accounts.{{ column }},
        {%- endfor %}
        accounts.row_hash,
        case
            when current_versions.row_hash = accounts.row_hash then current_versions.changed_run_date
            else cast(accounts.snapshot_date as {{ dbt.type_timestamp() }})
        end as changed_run_date
    from accounts
    left join current_versions
        on accounts.account_id = current_versions.account_id
)

select * from final
{% endsnapshot %}
