{#- SCD type 2 of billing subscription periods, keyed to the run date (the as-of
    date of the run: billing staging does not expose the drop's _run_date, and its
    latest drop on or before the as-of date is the as-of date's drop on a normal
    night). Same timestamp-strategy design as snap_crm__accounts: updated_at =
    changed_run_date, the run date on which the row's current values were first seen.
    Doc block snapshots_keyed_to_run_date. -#}
{% snapshot snap_billing__subscriptions %}
{{
    config(
        unique_key='subscription_id',
        strategy='timestamp',
        updated_at='changed_run_date',
    )
}}
{%- set tracked = ['account_id', 'plan_name', 'product_line', 'start_date', 'end_date', 'billing_interval',
                   'amount', 'currency_code', 'seats', 'is_per_seat'] %}
{%- set existing = adapter.get_relation(database=this.database, schema=this.schema, identifier=this.identifier) %}

with subscriptions as (
    select
        subscription_id,
        {%- for column in tracked %}
        {{ column }},
        {%- endfor %}
        {{ dbt.hash(dbt.concat(customers_hash_parts(tracked))) }} as row_hash
    from {{ ref('stg_billing__subscriptions') }}
),

{% if existing %}
current_versions as (
    select subscription_id, row_hash, changed_run_date
    from {{ this }}
    where dbt_valid_to is null
),
{% else %}
current_versions as (
    select
        cast(null as {{ dbt.type_string() }}) as subscription_id,
        cast(null as {{ dbt.type_string() }}) as row_hash,
        cast(null as {{ dbt.type_timestamp() }}) as changed_run_date
    where 1 = 0
),
{% endif %}

final as (
    select
        subscriptions.subscription_id,
        {%- for column in tracked %}
        subscriptions.{{ column }},
        {%- endfor %}
        subscriptions.row_hash,
        case
            when current_versions.row_hash = subscriptions.row_hash then current_versions.changed_run_date
            else cast({{ as_of_date() }} as {{ dbt.type_timestamp() }})
        end as changed_run_date
    from subscriptions
    left join current_versions
        on subscriptions.subscription_id = current_versions.subscription_id
)

select * from final
{% endsnapshot %}
