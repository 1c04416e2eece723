{#- Behaviour segments per account per as-of date (a daily history, incremental on
    as_of_date): usage, engagement, adoption stage, support needs, advocacy, growth
    potential and complexity, each with the measures that placed it, plus the day's
    conformed dimensions (value band, size band, industry group, region, plan) so
    that any later model can place an account in the segment it was in on a date.
    The rules (all thresholds are vars) are in doc block segment_rules. -#}
{{ config(date_partitioned_incremental('as_of_date')) }}
with accounts as (
    select * from {{ ref('int_accounts_enriched') }}
),

health_measures as (
    select * from {{ ref('int_account_health_components_scored') }}
),

joined as (
    select
        accounts.account_id,
        accounts.as_of_date,
        accounts.value_band,
        accounts.company_size_band,
        accounts.industry_group,
        accounts.region,
        accounts.plan_name,
        accounts.arr_reporting,
        accounts.has_active_subscription,
        accounts.account_status,
        accounts.tenure_days,
        accounts.licensed_seats,
        accounts.employee_count,
        accounts.licence_share_of_employees,
        accounts.product_lines_owned,
        accounts.product_lines_offered,
        case
            when accounts.product_lines_offered > 0
                then cast(1 as double) * accounts.product_lines_owned / accounts.product_lines_offered
        end as product_line_share,
        accounts.child_account_count,
        accounts.is_reference,
        health_measures.has_usage_data,
        health_measures.has_user_counts,
        health_measures.stickiness,
        health_measures.feature_breadth,
        health_measures.seat_utilisation,
        health_measures.features_used_in_window,
        health_measures.usage_trend,
        health_measures.response_rate,
        health_measures.days_since_touchpoint,
        health_measures.qbrs_attended,
        health_measures.recent_cases,
        health_measures.recent_priority_cases,
        health_measures.latest_nps_score
    from accounts
    left join health_measures
        on accounts.account_id = health_measures.account_id
),

classified as (
    select
        *,
        {#- a segment fed only by an entity that is off is unknown, not its "no data" value
            (macros/lake/entities_in_use.sql) -#}
        {%- if not entity_in_use('usage__events') and not entity_in_use('usage__daily_counts') %}
        'unknown'
        {%- else %}
        case
            {#- power, standard and low are about active users (DAU/MAU, seat use): usage that
                carries no users (daily counts without active users) leaves the segment unknown #}
            when has_usage_data and not coalesce(has_user_counts, true) then 'unknown'
            when coalesce(stickiness, 0) >= {{ var('segment_power_min_stickiness') }}
                 and coalesce(feature_breadth, 0) >= {{ var('segment_power_min_breadth') }}
                then 'power'
            when not coalesce(has_usage_data, false)
                 or coalesce(stickiness, 0) < {{ var('segment_low_max_stickiness') }}
                 or coalesce(seat_utilisation, 0) < {{ var('segment_low_max_seat_utilisation') }}
                then 'low'
            else 'standard'
        end
        {%- endif %} as usage_segment,
        {%- if not entity_in_use('crm__activities') %}
        'unknown'
        {%- else %}
        case
            when days_since_touchpoint is null
                 or days_since_touchpoint > {{ var('segment_engagement_silence_days') }}
                 or coalesce(response_rate, 0) < {{ var('segment_unresponsive_max_response_rate') }}
                then 'unresponsive'
            when response_rate >= {{ var('segment_responsive_min_response_rate') }}
                 and qbrs_attended > 0
                then 'responsive'
            else 'standard'
        end
        {%- endif %} as engagement_segment,
        case
            when tenure_days < {{ var('segment_early_stage_days') }} then 'early'
            when tenure_days < {{ var('segment_mature_min_days') }}
                 or coalesce(usage_trend, 0) >= {{ var('segment_growth_min_usage_trend') }}
                then 'growth'
            else 'mature'
        end as adoption_stage,
        {%- if not entity_in_use('crm__support_cases') %}
        'unknown'
        {%- else %}
        case
            when recent_cases >= {{ var('segment_support_high_min_cases') }}
                 or recent_priority_cases >= {{ var('segment_support_high_min_priority_cases') }}
                then 'high'
            when recent_cases = 0 then 'self-sufficient'
            else 'standard'
        end
        {%- endif %} as support_segment,
        case
            when is_reference then 'active'
            when latest_nps_score >= {{ var('segment_advocate_min_nps') }} then 'willing'
            else 'none'
        end as advocacy_segment,
        {#- a null licence share (no employee count) is unknown, not 0: SQL's three-valued
            logic lets the product lines decide where they can (doc block segment_rules) -#}
        case
            when licence_share_of_employees < {{ var('segment_growth_high_max_licence_share') }}
                 {{ 'and' if var('segment_growth_high_rule') == 'all' else 'or' }} (product_lines_offered > 1
                     and product_line_share <= {{ var('segment_growth_high_max_product_line_share') }})
                then 'high'
            when licence_share_of_employees < {{ var('segment_growth_medium_max_licence_share') }}
                 or product_lines_owned < product_lines_offered
                then 'medium'
            when licence_share_of_employees is null then 'unknown'
            else 'low'
        end as growth_potential,
        (
            case when product_lines_owned >= {{ var('segment_complex_min_product_lines') }} then 1 else 0 end
            + case when licensed_seats >= {{ var('segment_complex_min_seats') }} then 1 else 0 end
            + case when coalesce(features_used_in_window, 0) >= {{ var('segment_complex_min_features') }} then 1 else 0 end
            + case when child_account_count > 0 then 1 else 0 end
        ) as complexity_points
    from joined
),

final as (
    select
        *,
        case
            when complexity_points >= {{ var('segment_complex_min_points') }} then 'complex'
            when complexity_points >= {{ var('segment_moderate_min_points') }} then 'moderate'
            else 'simple'
        end as complexity_segment
    from classified
)

select * from final
