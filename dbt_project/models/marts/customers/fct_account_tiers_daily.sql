{#- Published: the assigned tier of every account on every as-of date, with the
    computed tier, the score and each criterion's contribution, the reason, the
    migration state and the day's conformed dimensions. Incremental on as_of_date. -#}
{{ config(date_partitioned_incremental('as_of_date')) }}

with tiers as (
    select * from {{ ref('int_account_tiers_assigned') }} as daily
    {{ customers_daily_filter('daily') }}
),

segments as (
    select * from {{ ref('int_account_segments_classified') }} as daily
    {{ customers_daily_filter('daily') }}
),

health as (
    select * from {{ ref('int_account_health_scored') }} as daily
    {{ customers_daily_filter('daily') }}
),

final as (
    select
        cast(tiers.account_id as {{ dbt.type_string() }}) as account_id,
        cast(tiers.as_of_date as date) as as_of_date,
        cast(tiers.account_status as {{ dbt.type_string() }}) as account_status,
        cast(tiers.assigned_tier as {{ dbt.type_string() }}) as assigned_tier,
        cast(tiers.tier_number as integer) as tier_number,
        cast(tiers.computed_tier as {{ dbt.type_string() }}) as computed_tier,
        cast(tiers.computed_tier_number as integer) as computed_tier_number,
        cast(tiers.tier_method as {{ dbt.type_string() }}) as tier_method,
        cast(tiers.tier_score as decimal(6, 2)) as tier_score,
        cast(tiers.arr_contribution as decimal(6, 2)) as arr_contribution,
        cast(tiers.expansion_contribution as decimal(6, 2)) as expansion_contribution,
        cast(tiers.strategic_contribution as decimal(6, 2)) as strategic_contribution,
        cast(tiers.complexity_health_contribution as decimal(6, 2)) as complexity_health_contribution,
        cast(tiers.rules_criterion as {{ dbt.type_string() }}) as rules_criterion,
        cast(tiers.rules_tier_number as integer) as rules_tier_number,
        cast(tiers.scorecard_tier_number as integer) as scorecard_tier_number,
        cast(tiers.computed_tier_reason as {{ dbt.type_string() }}) as computed_tier_reason,
        cast(tiers.tier_reason as {{ dbt.type_string() }}) as tier_reason,
        cast(tiers.migration_action as {{ dbt.type_string() }}) as migration_action,
        cast(tiers.previous_tier_number as integer) as previous_tier_number,
        cast(tiers.is_tier_changed as boolean) as is_tier_changed,
        cast(tiers.assigned_since_date as date) as assigned_since_date,
        cast(tiers.is_downgrade_pending as boolean) as is_downgrade_pending,
        cast(tiers.pending_downgrade_tier as {{ dbt.type_string() }}) as pending_downgrade_tier,
        cast(tiers.pending_downgrade_tier_number as integer) as pending_downgrade_tier_number,
        cast(tiers.pending_downgrade_date as date) as pending_downgrade_date,
        cast(tiers.next_renewal_date as date) as next_renewal_date,
        cast(tiers.last_tier_review_date as date) as last_tier_review_date,
        cast(tiers.next_tier_review_date as date) as next_tier_review_date,
        cast(tiers.arr_reporting as decimal(18, 2)) as arr_reporting,
        cast(tiers.growth_potential as {{ dbt.type_string() }}) as growth_potential,
        cast(tiers.is_strategic_account as boolean) as is_strategic_account,
        cast(tiers.is_high_churn_risk as boolean) as is_high_churn_risk,
        cast(health.health_status as {{ dbt.type_string() }}) as health_status,
        cast(segments.value_band as {{ dbt.type_string() }}) as value_band,
        cast(segments.company_size_band as {{ dbt.type_string() }}) as company_size_band,
        cast(segments.industry_group as {{ dbt.type_string() }}) as industry_group,
        cast(segments.region as {{ dbt.type_string() }}) as region,
        cast(segments.plan_name as {{ dbt.type_string() }}) as plan_name,
        cast(segments.adoption_stage as {{ dbt.type_string() }}) as adoption_stage
    from tiers
    left join segments
        on tiers.account_id = segments.account_id
        and tiers.as_of_date = segments.as_of_date
    left join health
        on tiers.account_id = health.account_id
        and tiers.as_of_date = health.as_of_date
    {{ customers_daily_filter('tiers') }}
)

select * from final
