{#- One row per account, reporting period type ('month', 'quarter') and period, with the
    account's state at the start of the period (= the end of the previous month) and at
    its end (its last month, or the as-of month for the current period), and the
    period's movement classified point to point with the same rule as the monthly one
    (macro revenue_movement_type). For months this equals int_account_mrr_monthly
    (checked by data-tests/assert_revenue_month_periods_match_monthly.sql). An account
    that starts and leaves inside one quarter shows no quarterly movement.
    Periods whose months did not change are kept, not rebuilt (config
    mrr_periods_incremental): a night deletes (pre-hook mrr_periods_invalidate) an
    account's periods from the first month int_account_mrr_monthly computed again (the
    months a night can change, every month of a restated account), and those of an
    account gone, then computes, per account and period type, the periods after its last
    kept one. The result equals a rebuild (tests/e2e/test_soak.py). -#}
{{ config(mrr_periods_incremental()) }}
with monthly as (
    select * from {{ ref('int_account_mrr_monthly') }}
),

{%- if is_incremental() %}

kept_periods as (
    select account_id, period_type, max(period_start_date) as last_kept_period
    from {{ this }}
    group by account_id, period_type
),
{%- endif %}

all_period_months as (
    select
        'month' as period_type,
        month_start_date as period_start_date,
        monthly.*
    from monthly

    union all

    select
        'quarter' as period_type,
        cast({{ dbt.date_trunc('quarter', 'month_start_date') }} as date) as period_start_date,
        monthly.*
    from monthly
),

period_months as (
    {#- the periods to compute: every one on a first build; on a night, those after the
        account's last kept period of the type -#}
    select all_period_months.*
    from all_period_months
    {%- if is_incremental() %}
    left join kept_periods
        on kept_periods.account_id = all_period_months.account_id
        and kept_periods.period_type = all_period_months.period_type
    where kept_periods.last_kept_period is null
       or all_period_months.period_start_date > kept_periods.last_kept_period
    {%- endif %}
),

account_periods as (
    select
        account_id,
        period_type,
        period_start_date,
        min(month_start_date) as first_month_in_period,
        max(month_start_date) as last_month_in_period,
        min(case when is_active_customer then month_start_date end) as first_customer_month_in_period
    from period_months
    group by account_id, period_type, period_start_date
),

with_states as (
    select
        account_periods.account_id,
        account_periods.period_type,
        account_periods.period_start_date,
        account_periods.first_month_in_period,
        account_periods.last_month_in_period,
        account_periods.first_customer_month_in_period,
        period_end.mrr_reference_date as period_end_reference_date,
        coalesce(period_start.is_active_customer, false) as was_active_customer,
        coalesce(period_start.is_ever_active_to_date, false) as was_ever_active_before,
        coalesce(period_start.mrr_reporting, cast(0 as decimal(18, 2))) as starting_mrr_reporting,
        coalesce(period_start.plan_name, period_end.plan_name) as starting_plan_name,
        period_end.is_active_customer,
        period_end.mrr_reporting as ending_mrr_reporting,
        period_end.arr_reporting as ending_arr_reporting,
        period_end.first_active_month
    from account_periods
    inner join monthly as period_end
        on period_end.account_id = account_periods.account_id
        and period_end.month_start_date = account_periods.last_month_in_period
    left join monthly as period_start
        on period_start.account_id = account_periods.account_id
        and period_start.month_start_date
            = cast({{ dbt.dateadd('month', -1, 'account_periods.period_start_date') }} as date)
),

classified as (
    select
        *,
        {{ revenue_movement_type(
            'was_active_customer', 'is_active_customer', 'was_ever_active_before',
            'starting_mrr_reporting', 'ending_mrr_reporting'
        ) }} as movement_type
    from with_states
),

final as (
    select
        account_id,
        period_type,
        period_start_date,
        first_month_in_period,
        last_month_in_period,
        {#- the month whose segment files the account in the period (segment membership):
            the period's first month for a customer at its start; else the month it became
            a customer in the period (on entry, like the monthly report; a return in a
            quarter's second month used to be filed by its state in the first month, without
            ARR) -#}
        case
            when was_active_customer then first_month_in_period
            else coalesce(first_customer_month_in_period, first_month_in_period)
        end as segment_month_start_date,
        period_end_reference_date,
        first_active_month,
        starting_plan_name,
        was_active_customer as is_starting_customer,
        is_active_customer as is_ending_customer,
        movement_type,
        starting_mrr_reporting,
        {{ revenue_movement_amounts('movement_type', 'starting_mrr_reporting', 'ending_mrr_reporting') }},
        ending_mrr_reporting,
        ending_arr_reporting,
        {{ as_of_date() }} as computed_as_of_date
    from classified
)

select * from final
