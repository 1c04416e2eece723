{#- Published: action signals, one row per account per signal per as-of date on which
    the account entered the signal's state. Incremental on as_of_date. -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='as_of_date',
        on_schema_change='append_new_columns',
        pre_hook="{{ customers_delete_as_of_partition() }}",
    )
}}

with signals as (
    select * from {{ ref('int_account_signals_detected') }}
),

final as (
    select
        cast(signal_id as varchar) as signal_id,
        cast(account_id as varchar) as account_id,
        cast(as_of_date as date) as as_of_date,
        cast(signal_type as varchar) as signal_type,
        cast(signal_category as varchar) as signal_category,
        cast(signal_detail as varchar) as signal_detail,
        cast(assigned_tier as varchar) as assigned_tier,
        cast(tier_number as integer) as tier_number,
        cast(csm_owner_id as varchar) as csm_owner_id,
        cast(health_status as varchar) as health_status,
        cast(next_renewal_date as date) as next_renewal_date,
        cast(days_to_renewal as integer) as days_to_renewal,
        cast(previous_as_of_date as date) as previous_as_of_date
    from signals
    {{ customers_daily_filter('signals') }}
)

select * from final
