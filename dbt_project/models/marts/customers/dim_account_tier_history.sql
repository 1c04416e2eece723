{#- Published: the tier history of every account as SCD type 2 (valid_from inclusive,
    valid_to exclusive, is_current), derived from the daily assigned tiers. -#}
with periods as (
    select * from {{ ref('int_account_tier_periods_derived') }}
),

final as (
    select
        cast(tier_period_id as {{ dbt.type_string() }}) as tier_period_id,
        cast(account_id as {{ dbt.type_string() }}) as account_id,
        cast(assigned_tier as {{ dbt.type_string() }}) as assigned_tier,
        cast(tier_number as integer) as tier_number,
        cast(previous_tier_number as integer) as previous_tier_number,
        cast(valid_from as date) as valid_from,
        cast(valid_to as date) as valid_to,
        cast(is_current as boolean) as is_current,
        cast(last_observed_date as date) as last_observed_date,
        cast(observed_days as integer) as observed_days,
        cast(change_type as {{ dbt.type_string() }}) as change_type,
        cast(change_reason as {{ dbt.type_string() }}) as change_reason
    from periods
)

select * from final
