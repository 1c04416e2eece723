{#- Revenue and logo flows and retention ratios per period type (month, quarter),
    period, segment dimension and segment value (plus the 'total' dimension). Accounts
    sit in the segment they were in at the start of the period, or on entry
    (int_account_segments_monthly at the period's first month for a customer at its
    start, else at the month the account became a customer in the period:
    int_account_mrr_periods.segment_month_start_date).
    Trailing retention: the cohort of customers at the end of the month var
    revenue_trailing_window_months before the period's last month, in the segment each
    was in at the start of that window. Every period has a 'total' row, also one in which
    no account was a customer or moved (zeros), so a period series never skips a month.
    The ratios: macros/revenue_retention_ratios.sql (whether reactivation counts in NRR
    and in the quick ratio: vars revenue_nrr_includes_reactivation,
    revenue_quick_ratio_includes_reactivation).
    Definitions: doc blocks in models/marts/revenue/_revenue__docs.md. -#}
{%- set window = var('revenue_trailing_window_months') | int -%}
with account_periods as {{ not_materialized_cte() }} (
    select * from {{ ref('int_account_mrr_periods') }}
),

account_months as {{ not_materialized_cte() }} (
    select * from {{ ref('int_account_mrr_monthly') }}
),

segments as {{ not_materialized_cte() }} (
    select * from {{ ref('int_account_segments_monthly') }}
),

relevant_account_periods as (
    select *
    from account_periods
    where is_starting_customer
       or is_ending_customer
       or movement_type is not null
),

account_period_segments as (
    select
        relevant_account_periods.*,
        segments.segment_dimension,
        segments.segment_value,
        segments.segment_source
    from relevant_account_periods
    inner join segments
        on segments.account_id = relevant_account_periods.account_id
        and segments.month_start_date = relevant_account_periods.segment_month_start_date
),

flows as (
    select
        period_type,
        period_start_date,
        segment_dimension,
        segment_value,
        max(last_month_in_period) as last_month_in_period,
        sum(starting_mrr_reporting) as starting_mrr_reporting,
        sum(new_mrr_reporting) as new_mrr_reporting,
        sum(expansion_mrr_reporting) as expansion_mrr_reporting,
        sum(contraction_mrr_reporting) as contraction_mrr_reporting,
        sum(churned_mrr_reporting) as churned_mrr_reporting,
        sum(reactivation_mrr_reporting) as reactivation_mrr_reporting,
        sum(ending_mrr_reporting) as ending_mrr_reporting,
        sum(ending_arr_reporting) as ending_arr_reporting,
        sum(case when is_starting_customer then 1 else 0 end) as starting_logos,
        sum(case when movement_type = 'new' then 1 else 0 end) as new_logos,
        sum(case when movement_type = 'churn' then 1 else 0 end) as churned_logos,
        sum(case when movement_type = 'reactivation' then 1 else 0 end) as reactivated_logos,
        sum(case when is_ending_customer then 1 else 0 end) as ending_logos,
        sum(case when segment_source = 'backcast' then 1 else 0 end) as backcast_accounts
    from account_period_segments
    group by period_type, period_start_date, segment_dimension, segment_value
),

periods as (
    select
        period_type,
        period_start_date,
        max(last_month_in_period) as last_month_in_period
    from account_periods
    group by period_type, period_start_date
),

trailing_cohort as {{ materialized_cte() }} (
    select
        periods.period_type,
        periods.period_start_date,
        window_start.account_id,
        window_start.mrr_reporting as cohort_starting_mrr,
        window_end.mrr_reporting as cohort_ending_mrr,
        window_end.is_active_customer as is_retained
    from periods
    inner join account_months as window_start
        on window_start.month_start_date
            = cast({{ dbt.dateadd('month', -1 * window, 'periods.last_month_in_period') }} as date)
        and window_start.is_active_customer
    inner join account_months as window_end
        on window_end.account_id = window_start.account_id
        and window_end.month_start_date = periods.last_month_in_period
),

cohort_retention as (
    select
        trailing_cohort.period_type,
        trailing_cohort.period_start_date,
        segments.segment_dimension,
        segments.segment_value,
        count(*) as trailing_cohort_logos,
        sum(case when trailing_cohort.is_retained then 1 else 0 end) as trailing_retained_logos,
        sum(trailing_cohort.cohort_starting_mrr) as trailing_cohort_starting_mrr,
        sum(
            case
                when trailing_cohort.cohort_ending_mrr < trailing_cohort.cohort_starting_mrr
                    then trailing_cohort.cohort_ending_mrr
                else trailing_cohort.cohort_starting_mrr
            end
        ) as trailing_gross_retained_mrr,
        sum(
            case
                when trailing_cohort.cohort_ending_mrr > trailing_cohort.cohort_starting_mrr
                    then trailing_cohort.cohort_ending_mrr - trailing_cohort.cohort_starting_mrr
                else 0
            end
        ) as trailing_expansion_mrr,
        sum(trailing_cohort.cohort_ending_mrr) as trailing_cohort_ending_mrr
    from trailing_cohort
    inner join periods
        on periods.period_type = trailing_cohort.period_type
        and periods.period_start_date = trailing_cohort.period_start_date
    inner join segments
        on segments.account_id = trailing_cohort.account_id
        and segments.month_start_date
            = cast({{ dbt.dateadd('month', 1 - window, 'periods.last_month_in_period') }} as date)
    group by
        trailing_cohort.period_type,
        trailing_cohort.period_start_date,
        segments.segment_dimension,
        segments.segment_value
),

row_keys as (
    {#- every segment row with flows or a trailing cohort, and a 'total' row for every
        period (zeros when no account was a customer or moved that period) -#}
    select period_type, period_start_date, segment_dimension, segment_value from flows
    union
    select period_type, period_start_date, segment_dimension, segment_value from cohort_retention
    union
    select period_type, period_start_date, 'total' as segment_dimension, 'All' as segment_value from periods
),

combined as (
    select
        row_keys.period_type,
        row_keys.period_start_date,
        row_keys.segment_dimension,
        row_keys.segment_value,
        coalesce(flows.starting_mrr_reporting, 0) as starting_mrr_reporting,
        coalesce(flows.new_mrr_reporting, 0) as new_mrr_reporting,
        coalesce(flows.expansion_mrr_reporting, 0) as expansion_mrr_reporting,
        coalesce(flows.contraction_mrr_reporting, 0) as contraction_mrr_reporting,
        coalesce(flows.churned_mrr_reporting, 0) as churned_mrr_reporting,
        coalesce(flows.reactivation_mrr_reporting, 0) as reactivation_mrr_reporting,
        coalesce(flows.ending_mrr_reporting, 0) as ending_mrr_reporting,
        coalesce(flows.ending_arr_reporting, 0) as ending_arr_reporting,
        coalesce(flows.starting_logos, 0) as starting_logos,
        coalesce(flows.new_logos, 0) as new_logos,
        coalesce(flows.churned_logos, 0) as churned_logos,
        coalesce(flows.reactivated_logos, 0) as reactivated_logos,
        coalesce(flows.ending_logos, 0) as ending_logos,
        coalesce(flows.backcast_accounts, 0) as backcast_accounts,
        coalesce(cohort_retention.trailing_cohort_logos, 0) as trailing_cohort_logos,
        coalesce(cohort_retention.trailing_retained_logos, 0) as trailing_retained_logos,
        coalesce(cohort_retention.trailing_cohort_starting_mrr, 0) as trailing_cohort_starting_mrr,
        coalesce(cohort_retention.trailing_gross_retained_mrr, 0) as trailing_gross_retained_mrr,
        coalesce(cohort_retention.trailing_expansion_mrr, 0) as trailing_expansion_mrr,
        coalesce(cohort_retention.trailing_cohort_ending_mrr, 0) as trailing_cohort_ending_mrr
    from row_keys
    left join flows
        on flows.period_type = row_keys.period_type
        and flows.period_start_date = row_keys.period_start_date
        and flows.segment_dimension = row_keys.segment_dimension
        and flows.segment_value = row_keys.segment_value
    left join cohort_retention
        on cohort_retention.period_type = row_keys.period_type
        and cohort_retention.period_start_date = row_keys.period_start_date
        and cohort_retention.segment_dimension = row_keys.segment_dimension
        and cohort_retention.segment_value = row_keys.segment_value
),

final as (
    select
        combined.*,
        periods.last_month_in_period,
        case when combined.backcast_accounts > 0 then 'backcast' else 'history' end as segment_source,
        {{ revenue_gross_revenue_retention() }} as gross_revenue_retention,
        {{ revenue_net_revenue_retention() }} as net_revenue_retention,
        {{ revenue_logo_retention() }} as logo_retention,
        {{ revenue_expansion_rate() }} as expansion_rate,
        {{ revenue_quick_ratio() }} as quick_ratio,
        case
            when trailing_cohort_starting_mrr > 0
                then cast(1 as double) * trailing_gross_retained_mrr / trailing_cohort_starting_mrr
        end as trailing_gross_revenue_retention,
        case
            when trailing_cohort_starting_mrr > 0
                then cast(1 as double) * trailing_cohort_ending_mrr / trailing_cohort_starting_mrr
        end as trailing_net_revenue_retention,
        case
            when trailing_cohort_logos > 0 then cast(1 as double) * trailing_retained_logos / trailing_cohort_logos
        end as trailing_logo_retention,
        case
            when trailing_cohort_starting_mrr > 0
                then cast(1 as double) * trailing_expansion_mrr / trailing_cohort_starting_mrr
        end as trailing_expansion_rate
    from combined
    inner join periods
        on periods.period_type = combined.period_type
        and periods.period_start_date = combined.period_start_date
)

select * from final
