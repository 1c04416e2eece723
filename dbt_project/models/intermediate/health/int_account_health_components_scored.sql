{#- The measures behind account health as of the run date and each component's
    0-100 score (null = no data for that component). One row per account. The
    component rules are in doc block health_components. -#}
with accounts as (
    select * from {{ ref('int_accounts_enriched') }}
),

usage_features as (
    select * from {{ ref('int_usage_features_computed') }}
),

{#- Does the company's usage carry users (events with user ids, or daily counts with active
    users)? Without them the user measures are missing for every account, never 0 (doc block
    usage_shapes). -#}
usage_users as (
    select coalesce(max(case when has_user_counts then 1 else 0 end), 0) = 1 as has_user_counts
    from usage_features
),

activities as (
    select * from {{ ref('stg_crm__activities') }}
),

support_cases as (
    select * from {{ ref('stg_crm__support_cases') }}
),

nps_responses as (
    select * from {{ ref('stg_crm__nps_responses') }}
),

invoices as (
    select * from {{ ref('stg_billing__invoices') }}
),

cs_engagement as (
    select
        account_id,
        count(*) as touchpoint_count,
        max(occurred_date) as last_touchpoint_date,
        sum(case when activity_type = 'qbr'
                  and occurred_date > {{ dbt.dateadd('day', -var('health_cs_lookback_days'), as_of_date()) }}
            then 1 else 0 end) as qbrs_held,
        sum(case when activity_type = 'qbr' and is_customer_responded
                  and occurred_date > {{ dbt.dateadd('day', -var('health_cs_lookback_days'), as_of_date()) }}
            then 1 else 0 end) as qbrs_attended,
        sum(case when occurred_date > {{ dbt.dateadd('day', -var('health_cs_responsiveness_window_days'), as_of_date()) }}
            then 1 else 0 end) as recent_touchpoints,
        sum(case when is_customer_responded
                  and occurred_date > {{ dbt.dateadd('day', -var('health_cs_responsiveness_window_days'), as_of_date()) }}
            then 1 else 0 end) as recent_touchpoints_responded
    from activities
    group by account_id
),

support as (
    select
        account_id,
        sum(case when status in ('open', 'pending') then 1 else 0 end) as open_cases,
        sum(case when status in ('open', 'pending') and priority = 'urgent' then 1 else 0 end) as open_urgent_cases,
        sum(case when opened_date > {{ dbt.dateadd('day', -var('health_support_lookback_days'), as_of_date()) }}
            then 1 else 0 end) as cases_in_lookback,
        avg(case when opened_date > {{ dbt.dateadd('day', -var('health_support_lookback_days'), as_of_date()) }}
            then csat_score end) as avg_csat,
        sum(case when opened_date > {{ dbt.dateadd('day', -var('segment_support_window_days'), as_of_date()) }}
            then 1 else 0 end) as cases_in_segment_window,
        sum(case when opened_date > {{ dbt.dateadd('day', -var('segment_support_window_days'), as_of_date()) }}
                  and priority in ('urgent', 'high')
            then 1 else 0 end) as priority_cases_in_segment_window
    from support_cases
    group by account_id
),

billing as (
    select
        account_id,
        sum(case when issued_date > {{ dbt.dateadd('day', -var('health_billing_lookback_days'), as_of_date()) }}
            then 1 else 0 end) as invoices_in_lookback,
        sum(case when invoice_status = 'open'
                  and {{ dbt.dateadd('day', var('health_billing_overdue_grace_days'), 'due_date') }} < {{ as_of_date() }}
            then 1 else 0 end) as overdue_invoices,
        sum(case when invoice_status = 'uncollectible'
                  and issued_date > {{ dbt.dateadd('day', -var('health_billing_lookback_days'), as_of_date()) }}
            then 1 else 0 end) as uncollectible_invoices
    from invoices
    group by account_id
),

nps_ranked as (
    select
        account_id,
        nps_score,
        responded_date,
        row_number() over (partition by account_id order by responded_at desc, response_id desc) as recency_rank
    from nps_responses
    where responded_date > {{ dbt.dateadd('day', -var('health_nps_lookback_days'), as_of_date()) }}
),

latest_nps as (
    select * from nps_ranked where recency_rank = 1
),

measures as (
    select
        accounts.account_id,
        accounts.as_of_date,
        accounts.account_status,
        accounts.licensed_seats,
        usage_features.account_id is not null as has_usage_data,
        usage_users.has_user_counts,
        case when usage_users.has_user_counts then coalesce(usage_features.monthly_active_users, 0) end
            as monthly_active_users,
        case when usage_users.has_user_counts then coalesce(usage_features.avg_daily_active_users, 0) end
            as avg_daily_active_users,
        coalesce(usage_features.features_used_in_window, 0) as features_used_in_window,
        usage_features.feature_catalogue_size,
        usage_features.events_in_window,
        usage_features.events_in_prior_window,
        usage_features.usage_trend,
        usage_features.last_activity_date,
        case
            when accounts.licensed_seats > 0 and usage_users.has_user_counts
                then cast(1 as double) * coalesce(usage_features.monthly_active_users, 0) / accounts.licensed_seats
        end as seat_utilisation,
        case
            when usage_features.account_id is null or not usage_users.has_user_counts then null
            when usage_features.monthly_active_users > 0
                then usage_features.avg_daily_active_users / usage_features.monthly_active_users
            else 0.0
        end as stickiness,
        case
            when usage_features.account_id is not null
                then cast(1 as double) * coalesce(usage_features.events_in_window, 0)
                    / {{ var('usage_window_days') }} / greatest(accounts.licensed_seats, 1)
        end as usage_intensity,
        case
            when usage_features.feature_catalogue_size > 0
                then cast(1 as double) * coalesce(usage_features.features_used_in_window, 0) / usage_features.feature_catalogue_size
        end as feature_breadth,
        cs_engagement.last_touchpoint_date,
        case
            when cs_engagement.last_touchpoint_date is not null
                then {{ dbt.datediff('cs_engagement.last_touchpoint_date', 'accounts.as_of_date', 'day') }}
        end as days_since_touchpoint,
        coalesce(cs_engagement.qbrs_held, 0) as qbrs_held,
        coalesce(cs_engagement.qbrs_attended, 0) as qbrs_attended,
        coalesce(cs_engagement.recent_touchpoints, 0) as recent_touchpoints,
        case
            when cs_engagement.recent_touchpoints > 0
                then cast(1 as double) * cs_engagement.recent_touchpoints_responded / cs_engagement.recent_touchpoints
        end as response_rate,
        coalesce(support.open_cases, 0) as open_cases,
        coalesce(support.open_urgent_cases, 0) as open_urgent_cases,
        coalesce(support.cases_in_lookback, 0) as cases_in_lookback,
        support.avg_csat,
        coalesce(support.cases_in_segment_window, 0) as recent_cases,
        coalesce(support.priority_cases_in_segment_window, 0) as recent_priority_cases,
        coalesce(billing.invoices_in_lookback, 0) as invoices_in_lookback,
        coalesce(billing.overdue_invoices, 0) as overdue_invoices,
        coalesce(billing.uncollectible_invoices, 0) as uncollectible_invoices,
        latest_nps.nps_score as latest_nps_score,
        latest_nps.responded_date as latest_nps_date
    from accounts
    left join usage_features
        on accounts.account_id = usage_features.account_id
    left join cs_engagement
        on accounts.account_id = cs_engagement.account_id
    left join support
        on accounts.account_id = support.account_id
    left join billing
        on accounts.account_id = billing.account_id
    left join latest_nps
        on accounts.account_id = latest_nps.account_id
    cross join usage_users
),

sub_scores as (
    select
        *,
        case when has_usage_data and has_user_counts then
            {{ customers_ratio_score('coalesce(seat_utilisation, 0)', var('health_seat_utilisation_target')) }}
        end as seat_utilisation_score,
        case when has_usage_data and has_user_counts then
            {{ customers_ratio_score('stickiness', var('health_stickiness_target')) }}
        end as stickiness_score,
        case when has_usage_data then
            {{ customers_ratio_score('usage_intensity', var('health_usage_intensity_target')) }}
        end as usage_intensity_score,
        case when has_usage_data then
            {{ customers_ratio_score('feature_breadth', var('health_breadth_target')) }}
        end as breadth_score,
        case when has_usage_data and usage_trend is not null then
            50.0 + 50.0 * greatest(-1.0, least(1.0, usage_trend / {{ var('health_trend_full_scale') }}))
        end as usage_trend_score,
        {{ customers_decay_score('days_since_touchpoint', var('health_cs_recency_full_days'), var('health_cs_recency_zero_days')) }}
            as touchpoint_recency_score,
        case when qbrs_held > 0 then cast(100 as double) * qbrs_attended / qbrs_held end as qbr_attendance_score,
        100.0 * response_rate as responsiveness_score,
        case when cases_in_lookback > 0 or open_cases > 0 then
            greatest(
                0.0,
                100.0
                - {{ var('health_support_open_case_penalty') }} * open_cases
                - {{ var('health_support_urgent_case_penalty') }} * open_urgent_cases
            )
        end as case_load_score,
        case when avg_csat is not null then 100.0 * (avg_csat - 1) / 4 end as csat_score,
        case when invoices_in_lookback > 0 or overdue_invoices > 0 then
            greatest(
                0.0,
                100.0
                - {{ var('health_billing_overdue_penalty') }} * overdue_invoices
                - {{ var('health_billing_uncollectible_penalty') }} * uncollectible_invoices
            )
        end as billing_score,
        10.0 * latest_nps_score as sentiment_score
    from measures
),

{%- set usage_w = var('health_usage_subweights') %}

final as (
    select
        *,
        {{ customers_weighted_score([
            ['seat_utilisation_score', usage_w['seat_utilisation']],
            ['stickiness_score', usage_w['stickiness']],
            ['breadth_score', usage_w['breadth']],
            ['usage_trend_score', usage_w['trend']],
            ['usage_intensity_score', usage_w['intensity']],
        ]) }} as product_usage_score,
        {{ customers_weighted_score([
            ['touchpoint_recency_score', 1],
            ['qbr_attendance_score', 1],
            ['responsiveness_score', 1],
        ]) }} as cs_engagement_score,
        {{ customers_weighted_score([
            ['case_load_score', 1],
            ['csat_score', 1],
        ]) }} as support_score
    from sub_scores
)

select * from final
