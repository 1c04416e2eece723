{#- Published roll-up: actions opened and closed per week (weeks start on Monday), tier and
    action type, how they closed, and how many were open and overdue on the week's last
    night in the history. The tier is the one the action opened in (its priority and due
    date come from it). Rebuilt whole each night from fct_account_actions_daily (a narrow
    scan of the feed's history). Doc block action_feed. -#}
{%- set close_reasons = ['resolved', 'superseded', 'expired', 'churned'] %}

with actions as (
    select * from {{ ref('fct_account_actions_daily') }}
    where as_of_date <= {{ as_of_date() }}
),

dated as (
    select
        *,
        cast({{ dbt.date_trunc('week', 'as_of_date') }} as date) as week_start_date
    from actions
),

week_last_nights as (
    select
        week_start_date,
        max(as_of_date) as last_as_of_date
    from dated
    group by week_start_date
),

weekly as (
    select
        dated.week_start_date,
        dated.tier_number,
        dated.tier_name,
        dated.action_type,
        sum(case when dated.is_opened_tonight then 1 else 0 end) as opened_count,
        sum(case when dated.action_status = 'closed' then 1 else 0 end) as closed_count,
        {%- for reason in close_reasons %}
        sum(case when dated.close_reason = '{{ reason }}' then 1 else 0 end) as closed_{{ reason }}_count,
        {%- endfor %}
        sum(case when dated.as_of_date = week_last_nights.last_as_of_date and dated.action_status = 'open'
            then 1 else 0 end) as open_at_week_end_count,
        sum(case when dated.as_of_date = week_last_nights.last_as_of_date and dated.is_overdue
            then 1 else 0 end) as overdue_at_week_end_count,
        max(week_last_nights.last_as_of_date) as last_as_of_date
    from dated
    inner join week_last_nights
        on dated.week_start_date = week_last_nights.week_start_date
    group by dated.week_start_date, dated.tier_number, dated.tier_name, dated.action_type
),

final as (
    select
        cast(week_start_date as date) as week_start_date,
        cast(tier_number as integer) as tier_number,
        cast(tier_name as {{ dbt.type_string() }}) as tier_name,
        cast(action_type as {{ dbt.type_string() }}) as action_type,
        cast(opened_count as bigint) as opened_count,
        cast(closed_count as bigint) as closed_count,
        {%- for reason in close_reasons %}
        cast(closed_{{ reason }}_count as bigint) as closed_{{ reason }}_count,
        {%- endfor %}
        cast(open_at_week_end_count as bigint) as open_at_week_end_count,
        cast(overdue_at_week_end_count as bigint) as overdue_at_week_end_count,
        cast(last_as_of_date as date) as last_as_of_date,
        cast(cast({{ dbt.dateadd('day', 6, 'week_start_date') }} as date) <= {{ as_of_date() }} as boolean) as is_week_complete
    from weekly
)

select * from final
