{#- Published: account health per account per as-of date: overall score and status,
    the five component scores, which were missing, the weakest component, the
    change and trend (up / down / same) vs 7 and 30 days earlier, the health profile it was scored with, with the day's conformed dimensions and tier.
    Incremental on as_of_date. -#}
{{ config(date_partitioned_incremental('as_of_date')) }}

with health as (
    select * from {{ ref('int_account_health_scored') }} as daily
    {{ customers_daily_filter('daily') }}
),

segments as (
    select * from {{ ref('int_account_segments_classified') }} as daily
    {{ customers_daily_filter('daily') }}
),

tiers as (
    select * from {{ ref('int_account_tiers_assigned') }} as daily
    {{ customers_daily_filter('daily') }}
),

final as (
    select
        cast(health.account_id as {{ dbt.type_string() }}) as account_id,
        cast(health.as_of_date as date) as as_of_date,
        cast(health.account_status as {{ dbt.type_string() }}) as account_status,
        cast(health.health_score as decimal(5, 1)) as health_score,
        cast(health.health_status as {{ dbt.type_string() }}) as health_status,
        cast(health.product_usage_score as decimal(5, 1)) as product_usage_score,
        cast(health.cs_engagement_score as decimal(5, 1)) as cs_engagement_score,
        cast(health.support_score as decimal(5, 1)) as support_score,
        cast(health.billing_score as decimal(5, 1)) as billing_score,
        cast(health.sentiment_score as decimal(5, 1)) as sentiment_score,
        cast(health.missing_component_count as integer) as missing_component_count,
        cast(health.missing_components as {{ dbt.type_string() }}) as missing_components,
        cast(health.weakest_component as {{ dbt.type_string() }}) as weakest_component,
        cast(health.health_score_change_7d as decimal(5, 1)) as health_score_change_7d,
        cast(health.health_score_change_30d as decimal(5, 1)) as health_score_change_30d,
        cast(health.health_trend_7d as {{ dbt.type_string() }}) as health_trend_7d,
        cast(health.health_trend_30d as {{ dbt.type_string() }}) as health_trend_30d,
        cast(health.health_profile as {{ dbt.type_string() }}) as health_profile,
        cast(tiers.assigned_tier as {{ dbt.type_string() }}) as assigned_tier,
        cast(tiers.tier_number as integer) as tier_number,
        cast(segments.value_band as {{ dbt.type_string() }}) as value_band,
        cast(segments.company_size_band as {{ dbt.type_string() }}) as company_size_band,
        cast(segments.industry_group as {{ dbt.type_string() }}) as industry_group,
        cast(segments.region as {{ dbt.type_string() }}) as region,
        cast(segments.plan_name as {{ dbt.type_string() }}) as plan_name,
        cast(segments.adoption_stage as {{ dbt.type_string() }}) as adoption_stage
    from health
    left join segments
        on health.account_id = segments.account_id
        and health.as_of_date = segments.as_of_date
    left join tiers
        on health.account_id = tiers.account_id
        and health.as_of_date = tiers.as_of_date
    {{ customers_daily_filter('health') }}
)

select * from final
