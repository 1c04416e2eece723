{#- Reference implementation, not a model: int_account_segments_monthly as it was before
    it read the compact segment history (int_account_segment_runs), straight from every
    row of the daily account marts. tests/dbt/test_bounded_nights.py compiles it and
    checks that the model gives exactly the same rows. -#}
{#- The segment each account was in at the start of each month, for every reporting
    dimension (long format), so that a period's figures never shift when accounts later
    move. Rules (doc block revenue_segment_membership):
    - history: for tier, health, value band, plan and adoption stage only days on which
      the account was live (account_status 'live': a subscription live that day) count;
      firmographics come from every day. For an account that was a customer at the
      month start (was_active_customer), the latest such row of the daily account marts
      (fct_account_tiers_daily, fct_account_health_daily, fct_account_segments_daily) on
      or before the month start and at most var revenue_segment_history_lookback_days
      before it - never a later row: the first month of the daily history, which starts
      after the month start, is backcast rather than filed under a later tier (an
      account that churned before the history began would otherwise sit in its
      post-churn state). For an account entering during the month, the same, else its
      first live row in the month (on entry).
    - otherwise (before the daily history starts, or an account missing from it):
      'backcast', derived from billing at the month start (ARR = 12 x MRR then, or on
      entry): value band with the value-band vars; tier with the tier rule of thumb on
      ARR (tier1_min_arr, tier2_min_arr, tier4_max_arr, tier4_plans); plan; adoption stage
      from tenure (segment_early_stage_days, segment_mature_min_days). Firmographics
      (company-size band, industry group, region) take the latest value before the month
      start, else the earliest known one; health status only the latest value before,
      else 'unknown' - never a later value projected back.
    - dimension 'total' (value 'All') for every account-month. -#}
with account_months as (
    select * from {{ ref('int_account_mrr_monthly') }}
),

tiers_daily as (
    select * from {{ ref('fct_account_tiers_daily') }}
),

health_daily as (
    select * from {{ ref('fct_account_health_daily') }}
),

segments_daily as (
    select * from {{ ref('fct_account_segments_daily') }}
),

history_unfiltered as (
    {#- tier, health, value band, plan and adoption stage only from days on which the
        account was live (a churned account has no tier or health, and its ARR-based
        segments describe it after the churn); firmographics (company size, industry,
        region) from every day -#}
    select account_id, as_of_date, 'tier' as segment_dimension, cast(assigned_tier as {{ dbt.type_string() }}) as segment_value
    from tiers_daily
    where account_status = 'live'
    union all
    select account_id, as_of_date, 'health_status', cast(health_status as {{ dbt.type_string() }})
    from health_daily
    where account_status = 'live'
    {%- for dimension in ['value_band', 'company_size_band', 'industry_group', 'region', 'plan_name', 'adoption_stage'] %}
    union all
    select account_id, as_of_date, '{{ "plan" if dimension == "plan_name" else dimension }}', cast({{ dimension }} as {{ dbt.type_string() }})
    from segments_daily
    {%- if dimension in ['value_band', 'plan_name', 'adoption_stage'] %}
    where account_status = 'live'
    {%- endif %}
    {%- endfor %}
),

history as (
    {#- only what was known on the as-of date: a backfill of an earlier date run after
        later nights must give the same tables as the original night -#}
    select * from history_unfiltered
    where as_of_date <= {{ as_of_date() }}
),

dimensions as (
    select distinct segment_dimension from history
    {%- for dimension in ['tier', 'health_status', 'value_band', 'company_size_band', 'industry_group', 'region', 'plan', 'adoption_stage'] %}
    union select '{{ dimension }}'
    {%- endfor %}
),

account_months_with_previous as (
    select
        *,
        lag(plan_name) over (partition by account_id order by month_start_date) as previous_plan_name
    from account_months
),

account_month_dimensions as (
    select
        account_months_with_previous.account_id,
        account_months_with_previous.month_start_date,
        account_months_with_previous.month_end_date,
        account_months_with_previous.previous_mrr_reporting,
        account_months_with_previous.mrr_reporting,
        account_months_with_previous.plan_name,
        account_months_with_previous.first_subscription_date,
        account_months_with_previous.previous_plan_name,
        account_months_with_previous.was_active_customer,
        dimensions.segment_dimension
    from account_months_with_previous
    cross join dimensions
),

{#- Each history row can place the account in the months whose window
    [month start - lookback, month end] holds its date: its own month and the next
    few (as many as the lookback reaches into). Listing them turns the window test into
    an equi-join on the month key, which a distributed engine hashes instead of
    comparing every history row with every account-month. -#}
{%- set lookback_days = var('revenue_segment_history_lookback_days') | int %}
history_months as (
    select
        history.*,
        cast({{ dbt.dateadd('month', 'month_offsets.month_offset', dbt.date_trunc('month', 'history.as_of_date')) }} as date)
            as month_start_date
    from history
    cross join (
        {%- for offset in range(0, lookback_days // 28 + 2) %}
        select {{ offset }} as month_offset{% if not loop.last %} union all{% endif %}
        {%- endfor %}
    ) as month_offsets
    where {{ dbt.dateadd('month', 'month_offsets.month_offset', dbt.date_trunc('month', 'history.as_of_date')) }}
        <= {{ dbt.date_trunc('month', dbt.dateadd('day', lookback_days, 'history.as_of_date')) }}
),

history_candidates as (
    select
        account_month_dimensions.account_id,
        account_month_dimensions.month_start_date,
        account_month_dimensions.segment_dimension,
        history.segment_value,
        row_number() over (
            partition by
                account_month_dimensions.account_id,
                account_month_dimensions.month_start_date,
                account_month_dimensions.segment_dimension
            order by
                case when history.as_of_date <= account_month_dimensions.month_start_date then 0 else 1 end,
                case
                    when history.as_of_date <= account_month_dimensions.month_start_date
                        then {{ dbt.datediff('history.as_of_date', 'account_month_dimensions.month_start_date', 'day') }}
                    else {{ dbt.datediff('account_month_dimensions.month_start_date', 'history.as_of_date', 'day') }}
                end
        ) as candidate_rank
    from account_month_dimensions
    inner join history_months as history
        on history.account_id = account_month_dimensions.account_id
        and history.segment_dimension = account_month_dimensions.segment_dimension
        and history.month_start_date = account_month_dimensions.month_start_date
    where history.as_of_date <= account_month_dimensions.month_end_date
        {# a row after the month start only places an account entering during the month #}
        and (history.as_of_date <= account_month_dimensions.month_start_date
             or not account_month_dimensions.was_active_customer)
        and history.as_of_date >= cast({{ dbt.dateadd(
            'day',
            -1 * lookback_days,
            'account_month_dimensions.month_start_date'
        ) }} as date)
),

history_values as (
    select * from history_candidates where candidate_rank = 1
),

known_values as (
    {#- every account's values ordered in time, for the backcast of the dimensions that
        billing cannot derive -#}
    select
        account_id,
        segment_dimension,
        as_of_date,
        segment_value,
        row_number() over (partition by account_id, segment_dimension order by as_of_date) as value_order
    from history
),

earliest_values as (
    select account_id, segment_dimension, segment_value
    from known_values
    where value_order = 1
),

timeline as (
    {#- history rows and month-start markers in one ordered stream per account and
        dimension; a marker takes the value of the latest history row at or before it
        (a row dated on the month start comes first). Linear, unlike a range join. -#}
    select
        account_id,
        segment_dimension,
        as_of_date as event_date,
        0 as is_marker,
        segment_value
    from history

    union all

    select
        account_id,
        segment_dimension,
        month_start_date as event_date,
        1 as is_marker,
        cast(null as {{ dbt.type_string() }}) as segment_value
    from account_month_dimensions
    where segment_dimension in ('company_size_band', 'industry_group', 'region', 'health_status')
),

timeline_groups as (
    select
        *,
        count(case when is_marker = 0 then 1 end) over (
            partition by account_id, segment_dimension
            order by event_date, is_marker
            rows between unbounded preceding and current row
        ) as value_group
    from timeline
),

latest_values_before as (
    select
        markers.account_id,
        markers.event_date as month_start_date,
        markers.segment_dimension,
        known.segment_value
    from timeline_groups as markers
    inner join timeline_groups as known
        on known.account_id = markers.account_id
        and known.segment_dimension = markers.segment_dimension
        and known.value_group = markers.value_group
        and known.is_marker = 0
    where markers.is_marker = 1
      and markers.value_group > 0
),

backcast_arr as (
    select
        *,
        12 * case
            when previous_mrr_reporting > 0 then previous_mrr_reporting
            else mrr_reporting
        end as arr_at_start,
        coalesce(previous_plan_name, plan_name) as plan_at_start,
        {{ dbt.datediff('first_subscription_date', 'month_start_date', 'day') }} as tenure_days_at_start
    from account_month_dimensions
),

backcast as (
    select
        backcast_arr.account_id,
        backcast_arr.month_start_date,
        backcast_arr.segment_dimension,
        case backcast_arr.segment_dimension
            when 'value_band' then
                case
                    when backcast_arr.arr_at_start >= {{ var('value_band_enterprise_min_arr') }} then 'Enterprise'
                    when backcast_arr.arr_at_start >= {{ var('value_band_mid_market_min_arr') }} then 'Mid-market'
                    else 'SMB'
                end
            when 'tier' then
                {# the tier rule of thumb on ARR only (no strategic / growth criteria, no
                    downgrade grace): the account models' thresholds  #}
                case
                    when backcast_arr.plan_at_start in (
                        {%- for plan in var('tier4_plans') %}'{{ plan }}'{{ ', ' if not loop.last }}{% endfor -%}
                    ) then 'Tech-touch'
                    when backcast_arr.arr_at_start >= {{ var('tier1_min_arr') }} then 'Strategic'
                    when backcast_arr.arr_at_start >= {{ var('tier2_min_arr') }} then 'Core'
                    when backcast_arr.arr_at_start < {{ var('tier4_max_arr') }} then 'Tech-touch'
                    else 'Scale'
                end
            when 'plan' then coalesce(backcast_arr.plan_at_start, 'unknown')
            when 'adoption_stage' then
                {# tenure only (usage history is not kept that far back)  #}
                case
                    when backcast_arr.tenure_days_at_start < {{ var('segment_early_stage_days') }} then 'early'
                    when backcast_arr.tenure_days_at_start < {{ var('segment_mature_min_days') }} then 'growth'
                    else 'mature'
                end
            when 'health_status' then
                {# never projected back from later history: health is not derivable  #}
                coalesce(latest_values_before.segment_value, 'unknown')
            else coalesce(latest_values_before.segment_value, earliest_values.segment_value, 'unknown')
        end as segment_value
    from backcast_arr
    left join latest_values_before
        on latest_values_before.account_id = backcast_arr.account_id
        and latest_values_before.month_start_date = backcast_arr.month_start_date
        and latest_values_before.segment_dimension = backcast_arr.segment_dimension
    left join earliest_values
        on earliest_values.account_id = backcast_arr.account_id
        and earliest_values.segment_dimension = backcast_arr.segment_dimension
),

resolved as (
    select
        backcast.account_id,
        backcast.month_start_date,
        backcast.segment_dimension,
        coalesce(history_values.segment_value, backcast.segment_value) as segment_value,
        case when history_values.segment_value is not null then 'history' else 'backcast' end as segment_source
    from backcast
    left join history_values
        on history_values.account_id = backcast.account_id
        and history_values.month_start_date = backcast.month_start_date
        and history_values.segment_dimension = backcast.segment_dimension
),

totals as (
    select
        account_id,
        month_start_date,
        'total' as segment_dimension,
        'All' as segment_value,
        'history' as segment_source
    from account_months
),

final as (
    select * from resolved
    union all
    select * from totals
)

select * from final
