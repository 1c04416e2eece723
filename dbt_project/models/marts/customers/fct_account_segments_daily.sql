{#- Published: the behaviour segments and conformed dimensions of every account on
    every as-of date, with the measures behind each segment. Incremental on
    as_of_date. -#}
{{ config(date_partitioned_incremental('as_of_date')) }}

with segments as (
    select * from {{ ref('int_account_segments_classified') }} as daily
    {{ customers_daily_filter('daily') }}
),

health as (
    select * from {{ ref('int_account_health_scored') }} as daily
    {{ customers_daily_filter('daily') }}
),

tiers as (
    select * from {{ ref('int_account_tiers_assigned') }} as daily
    {{ customers_daily_filter('daily') }}
),

final as (
    select
        cast(segments.account_id as {{ dbt.type_string() }}) as account_id,
        cast(segments.as_of_date as date) as as_of_date,
        cast(segments.usage_segment as {{ dbt.type_string() }}) as usage_segment,
        cast(segments.engagement_segment as {{ dbt.type_string() }}) as engagement_segment,
        cast(segments.adoption_stage as {{ dbt.type_string() }}) as adoption_stage,
        cast(segments.support_segment as {{ dbt.type_string() }}) as support_segment,
        cast(segments.advocacy_segment as {{ dbt.type_string() }}) as advocacy_segment,
        cast(segments.growth_potential as {{ dbt.type_string() }}) as growth_potential,
        cast(segments.complexity_segment as {{ dbt.type_string() }}) as complexity_segment,
        cast(segments.value_band as {{ dbt.type_string() }}) as value_band,
        cast(segments.company_size_band as {{ dbt.type_string() }}) as company_size_band,
        cast(segments.industry_group as {{ dbt.type_string() }}) as industry_group,
        cast(segments.region as {{ dbt.type_string() }}) as region,
        cast(segments.plan_name as {{ dbt.type_string() }}) as plan_name,
        cast(segments.arr_reporting as decimal(18, 2)) as arr_reporting,
        cast(segments.has_active_subscription as boolean) as has_active_subscription,
        cast(segments.account_status as {{ dbt.type_string() }}) as account_status,
        cast(segments.tenure_days as integer) as tenure_days,
        cast(segments.stickiness as decimal(18, 6)) as stickiness,
        cast(segments.feature_breadth as decimal(18, 6)) as feature_breadth,
        cast(segments.seat_utilisation as decimal(18, 6)) as seat_utilisation,
        cast(segments.usage_trend as decimal(18, 6)) as usage_trend,
        cast(segments.response_rate as decimal(18, 6)) as response_rate,
        cast(segments.days_since_touchpoint as integer) as days_since_touchpoint,
        cast(segments.recent_cases as integer) as recent_cases,
        cast(segments.recent_priority_cases as integer) as recent_priority_cases,
        cast(segments.latest_nps_score as integer) as latest_nps_score,
        cast(segments.licence_share_of_employees as decimal(18, 6)) as licence_share_of_employees,
        cast(segments.product_lines_owned as integer) as product_lines_owned,
        cast(segments.product_lines_offered as integer) as product_lines_offered,
        cast(segments.complexity_points as integer) as complexity_points,
        cast(health.health_status as {{ dbt.type_string() }}) as health_status,
        cast(tiers.assigned_tier as {{ dbt.type_string() }}) as assigned_tier,
        cast(tiers.tier_number as integer) as tier_number
    from segments
    left join health
        on segments.account_id = health.account_id
        and segments.as_of_date = health.as_of_date
    left join tiers
        on segments.account_id = tiers.account_id
        and segments.as_of_date = tiers.as_of_date
    {{ customers_daily_filter('segments') }}
)

select * from final
