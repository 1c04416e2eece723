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
    - dimension 'total' (value 'All') for every account-month.
    The daily rows are read as runs (int_account_segment_runs: one row per stretch of
    consecutive days with one value, not one per day), so a night's cost does not grow
    with the nights already in the daily marts; the result is the same as reading every
    daily row (analyses/segments_monthly_from_daily_rows.sql, compared by a test).
    Closed months are kept, not rebuilt (config segments_monthly_incremental): a row
    depends only on its account-month's billing state (int_account_mrr_monthly: MRR, the
    month before's MRR and plan, first subscription, customer at the start) and on the
    account's runs up to the month's end, which a later night never changes (new runs
    start on the night, after a closed month's end). Each row records a fingerprint of
    its billing inputs (and of the vars it reads); a night deletes the rows of the month
    in progress, every row whose account-month's fingerprint changed (billing restated in
    the night's snapshot, a month that closed, a return that bridges a gap, an FX or var
    change) or is gone, and every month of an account whose first run starts that night
    (its earliest known firmographics now fill its backcast months), then computes the
    account-months missing. A first build (or a full refresh) computes every one; the
    result is the same (tests/e2e/test_soak.py compares every monthly mart with a full
    refresh after a restated closed month). The night's data tests check the rows it
    computed (meta partition_date_column: computed_as_of_date). -#}
{{ config(segments_monthly_incremental()) }}
with all_account_months as (
    select
        account_id,
        month_start_date,
        month_end_date,
        previous_mrr_reporting,
        mrr_reporting,
        plan_name,
        first_subscription_date,
        was_active_customer
    from {{ ref('int_account_mrr_monthly') }}
),

all_account_months_with_previous as (
    select
        *,
        lag(plan_name) over (partition by account_id order by month_start_date) as previous_plan_name
    from all_account_months
),

account_months as (
    {#- the account-months to compute: every one on a first build; on a night, those the
        pre-hook (segments_monthly_invalidate) left without rows -#}
    select
        all_account_months_with_previous.*,
        {{ segments_monthly_inputs_fingerprint('all_account_months_with_previous') }} as inputs_fingerprint
    from all_account_months_with_previous
    {%- if is_incremental() %}
    where not exists (
        {#- a kept account-month has all its dimensions: its 'total' row stands for it -#}
        select 1
        from {{ this }} as kept
        where kept.segment_dimension = 'total'
          and kept.account_id = all_account_months_with_previous.account_id
          and kept.month_start_date = all_account_months_with_previous.month_start_date
    )
    {%- endif %}
),

runs as (
    {#- the daily account marts' history as runs of one value (consecutive days),
        known on the as-of date; the live-only rule is applied there (the accounts
        computed only) -#}
    select * from {{ ref('int_account_segment_runs') }} as all_runs
    {%- if is_incremental() %}
    where exists (select 1 from account_months where account_months.account_id = all_runs.account_id)
    {%- endif %}
),

dimensions as (
    select distinct segment_dimension from {{ ref('int_account_segment_runs') }}
    {%- for dimension in ['tier', 'health_status', 'value_band', 'company_size_band', 'industry_group', 'region', 'plan', 'adoption_stage'] %}
    union select '{{ dimension }}'
    {%- endfor %}
),

account_month_dimensions as (
    select
        account_months.account_id,
        account_months.month_start_date,
        account_months.month_end_date,
        account_months.previous_mrr_reporting,
        account_months.mrr_reporting,
        account_months.plan_name,
        account_months.first_subscription_date,
        account_months.previous_plan_name,
        account_months.was_active_customer,
        dimensions.segment_dimension
    from account_months
    cross join dimensions
),

{#- Each month start is placed in its account's ordered runs (a marker after the runs
    starting on or before it): the run before it holds the latest daily row on or before
    the month start, on the run's last day or on the month start itself; the run after
    it holds the first row after the month start, on the run's first day. Linear, and
    equi-joins only, unlike a range join of every month with every run. -#}
{%- set lookback_days = var('revenue_segment_history_lookback_days') | int %}
timeline as (
    select
        account_id,
        segment_dimension,
        valid_from as event_date,
        0 as is_marker
    from runs

    union all

    select
        account_id,
        segment_dimension,
        month_start_date as event_date,
        1 as is_marker
    from account_month_dimensions
),

markers as (
    select
        account_id,
        segment_dimension,
        event_date as month_start_date,
        run_count as run_before_number
    from (
        select
            *,
            count(case when is_marker = 0 then 1 end) over (
                partition by account_id, segment_dimension
                order by event_date, is_marker
                rows between unbounded preceding and current row
            ) as run_count
        from timeline
    ) as counted
    where is_marker = 1
),

month_runs as (
    select
        account_month_dimensions.account_id,
        account_month_dimensions.month_start_date,
        account_month_dimensions.month_end_date,
        account_month_dimensions.segment_dimension,
        account_month_dimensions.was_active_customer,
        run_before.segment_value as before_value,
        {#- the latest daily row on or before the month start -#}
        case
            when run_before.valid_until < account_month_dimensions.month_start_date then run_before.valid_until
            else account_month_dimensions.month_start_date
        end as before_date,
        run_before.run_number as before_run_number,
        run_after.segment_value as after_value,
        {#- the first daily row after the month start -#}
        run_after.valid_from as after_date
    from account_month_dimensions
    inner join markers
        on markers.account_id = account_month_dimensions.account_id
        and markers.segment_dimension = account_month_dimensions.segment_dimension
        and markers.month_start_date = account_month_dimensions.month_start_date
    left join runs as run_before
        on run_before.account_id = markers.account_id
        and run_before.segment_dimension = markers.segment_dimension
        and run_before.run_number = markers.run_before_number
    left join runs as run_after
        on run_after.account_id = markers.account_id
        and run_after.segment_dimension = markers.segment_dimension
        and run_after.run_number = markers.run_before_number + 1
),

history_values as (
    {#- the latest row on or before the month start within the lookback; else, for an
        account entering during the month, its first row in the month (on entry) -#}
    select
        account_id,
        month_start_date,
        segment_dimension,
        case
            when before_run_number is not null
                and before_date >= cast({{ dbt.dateadd('day', -1 * lookback_days, 'month_start_date') }} as date)
                then before_value
            else after_value
        end as segment_value
    from month_runs
    where (
            before_run_number is not null
            and before_date >= cast({{ dbt.dateadd('day', -1 * lookback_days, 'month_start_date') }} as date)
        )
        or (
            not was_active_customer
            and after_date is not null
            and after_date <= month_end_date
        )
),

latest_values_before as (
    {#- the latest value on or before the month start, however old -#}
    select
        account_id,
        month_start_date,
        segment_dimension,
        before_value as segment_value
    from month_runs
    where before_run_number is not null
),

earliest_values as (
    select account_id, segment_dimension, segment_value
    from runs
    where run_number = 1
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

memberships as (
    select * from resolved
    union all
    select * from totals
),

final as (
    select
        memberships.*,
        account_months.inputs_fingerprint,
        {{ as_of_date() }} as computed_as_of_date
    from memberships
    inner join account_months
        on account_months.account_id = memberships.account_id
        and account_months.month_start_date = memberships.month_start_date
)

select * from final
