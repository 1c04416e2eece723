{#- The state behind each action signal, per account per as-of date (a daily history,
    incremental on as_of_date). A signal fires when an account enters a state: see
    int_account_signals_detected, which compares a date with the previous as-of date
    in this history. Doc block action_signals. -#}
{{ config(date_partitioned_incremental('as_of_date')) }}

with tiers as (
    select * from {{ ref('int_account_tiers_assigned') }}
    where as_of_date = {{ as_of_date() }}
),

accounts as (
    select * from {{ ref('int_accounts_enriched') }}
),

health as (
    select * from {{ ref('int_account_health_scored') }}
    where as_of_date = {{ as_of_date() }}
),

health_measures as (
    select * from {{ ref('int_account_health_components_scored') }}
),

final as (
    select
        tiers.account_id,
        tiers.as_of_date,
        tiers.assigned_tier_number,
        tiers.assigned_tier,
        accounts.csm_owner_id,
        accounts.next_renewal_date,
        accounts.days_to_renewal,
        {%- for days in var('signal_renewal_days') %}
        coalesce(accounts.days_to_renewal between 0 and {{ days }}, false) as is_renewal_within_{{ days }}d,
        {%- endfor %}
        health.health_status,
        health.health_score,
        coalesce(health.health_status in ('at-risk', 'critical'), false) as is_health_at_risk_or_worse,
        coalesce(health.health_status = 'critical', false) as is_health_critical,
        health_measures.seat_utilisation,
        health_measures.usage_trend,
        coalesce(health_measures.seat_utilisation >= {{ var('signal_expansion_min_seat_utilisation') }}, false)
            as is_seat_utilisation_high,
        coalesce(health_measures.usage_trend >= {{ var('signal_expansion_min_usage_growth') }}, false)
            as is_usage_growing,
        tiers.is_tier_changed,
        tiers.previous_tier_number,
        tiers.is_downgrade_pending,
        tiers.pending_downgrade_tier,
        tiers.pending_downgrade_date
    from tiers
    inner join accounts
        on tiers.account_id = accounts.account_id
    left join health
        on tiers.account_id = health.account_id
    left join health_measures
        on tiers.account_id = health_measures.account_id
)

select * from final
