{#- Account-month MRR adds up to the billing-derived total, recomputed here
    independently of the revenue models: from the billing staging rows and the FX seed,
    subscriptions active on each month's reference date (end dates exclusive, trials
    left out unless counted), normalised to a month, summed per account and rounded to
    the cent once per account. Checked per month, to the cent:
    - the subscribed MRR of fct_mrr_account_monthly equals that total;
    - its MRR equals that total less the MRR of the accounts suspended for non-payment;
    - the monthly movements (fct_mrr_movements) add up to the month's change in MRR;
    - the segment report's total ending MRR equals the account-month total. -#}
with subscriptions as (
    select * from {{ ref('stg_billing__subscriptions') }}
),

fx_rates as (
    select * from {{ ref('int_fx_rates_to_reporting') }}
),

account_months as (
    select * from {{ ref('fct_mrr_account_monthly') }}
),

movements as (
    select * from {{ ref('fct_mrr_movements') }}
),

segment_totals as (
    select * from {{ ref('rpt_segment_retention_monthly') }}
    where segment_dimension = 'total'
),

reference_dates as (
    select distinct month_start_date, mrr_reference_date from account_months
),

billing_account_months as (
    select
        reference_dates.month_start_date,
        subscriptions.account_id,
        cast(
            sum(
                cast(
                    subscriptions.amount
                    * case when subscriptions.is_per_seat then subscriptions.seats else 1 end
                    * fx_rates.rate_to_reporting
                    / subscriptions.billing_interval_months
                    as decimal(18, 6)
                )
            ) as decimal(18, 2)
        ) as billing_mrr
    from reference_dates
    inner join subscriptions
        on subscriptions.start_date <= reference_dates.mrr_reference_date
        and (subscriptions.end_date is null or subscriptions.end_date > reference_dates.mrr_reference_date)
    left join fx_rates
        on fx_rates.currency_code = subscriptions.currency_code
        and subscriptions.start_date >= fx_rates.valid_from
        and (fx_rates.valid_to is null or subscriptions.start_date < fx_rates.valid_to)
    {% if not var('revenue_count_trials_as_customers') -%}
    where subscriptions.plan_name not in (
        {%- for plan in var('revenue_trial_plans') %}'{{ plan | lower }}'{{ ", " if not loop.last }}{% endfor -%}
    )
    {%- endif %}
    group by reference_dates.month_start_date, subscriptions.account_id
),

billing_months as (
    select month_start_date, sum(billing_mrr) as billing_mrr
    from billing_account_months
    group by month_start_date
),

mart_months as (
    select
        month_start_date,
        sum(subscribed_mrr_reporting) as subscribed_mrr,
        sum(case when is_past_due_suspended then subscribed_mrr_reporting else 0 end) as suspended_mrr,
        sum(mrr_reporting) as mrr,
        sum(mrr_change_reporting) as mrr_change
    from account_months
    group by month_start_date
),

movement_months as (
    select month_start_date, sum(mrr_change_reporting) as movement_change
    from movements
    group by month_start_date
),

compared as (
    select
        mart_months.month_start_date,
        coalesce(billing_months.billing_mrr, 0) as billing_mrr,
        mart_months.subscribed_mrr,
        mart_months.suspended_mrr,
        mart_months.mrr,
        mart_months.mrr_change,
        coalesce(movement_months.movement_change, 0) as movement_change,
        segment_totals.ending_mrr_reporting as report_ending_mrr
    from mart_months
    left join billing_months
        on billing_months.month_start_date = mart_months.month_start_date
    left join movement_months
        on movement_months.month_start_date = mart_months.month_start_date
    left join segment_totals
        on segment_totals.period_start_date = mart_months.month_start_date
)

select *
from compared
where billing_mrr <> subscribed_mrr
   or billing_mrr - suspended_mrr <> mrr
   or movement_change <> mrr_change
   or coalesce(report_ending_mrr, 0) <> mrr
