{#- Published: action signals, one row per account per signal per as-of date on which
    the account entered the signal's state. Incremental on as_of_date. -#}
{{ config(date_partitioned_incremental('as_of_date')) }}

with signals as (
    select * from {{ ref('int_account_signals_detected') }}
),

final as (
    select
        cast(signal_id as {{ dbt.type_string() }}) as signal_id,
        cast(account_id as {{ dbt.type_string() }}) as account_id,
        cast(as_of_date as date) as as_of_date,
        cast(signal_type as {{ dbt.type_string() }}) as signal_type,
        cast(signal_category as {{ dbt.type_string() }}) as signal_category,
        cast(signal_detail as {{ dbt.type_string() }}) as signal_detail,
        cast(assigned_tier as {{ dbt.type_string() }}) as assigned_tier,
        cast(tier_number as integer) as tier_number,
        cast(csm_owner_id as {{ dbt.type_string() }}) as csm_owner_id,
        cast(health_status as {{ dbt.type_string() }}) as health_status,
        cast(next_renewal_date as date) as next_renewal_date,
        cast(days_to_renewal as integer) as days_to_renewal,
        cast(previous_as_of_date as date) as previous_as_of_date
    from signals
    {{ customers_daily_filter('signals') }}
)

select * from final
