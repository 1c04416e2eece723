{#- One row per subscription period with its monthly recurring revenue in the reporting
    currency (var reporting_currency): amount / months in the billing interval (1, 3, 12),
    times seats when the amount is per seat, converted at the FX rate valid on the
    period's start date (a booking rate: a period's MRR does not move with FX, so FX never
    shows up as expansion or contraction).
    mrr_reporting keeps 6 decimals (an annual 1,000 is 83.333333 a month); arr_reporting
    is computed from the interval amount directly (an annual 100,000 is 100,000.00 ARR,
    not 12 x a rounded MRR). Account-month MRR is rounded to the cent in
    int_account_mrr_monthly. Rows are kept for every plan; is_trial flags the trial plans
    (var revenue_trial_plans). -#}
with subscriptions as (
    select * from {{ ref('stg_billing__subscriptions') }}
),

fx_rates as (
    select * from {{ ref('int_fx_rates_to_reporting') }}
),

rated as (
    select
        subscriptions.*,
        fx_rates.rate_to_reporting as fx_rate_to_reporting
    from subscriptions
    left join fx_rates
        on subscriptions.currency_code = fx_rates.currency_code
        and subscriptions.start_date >= fx_rates.valid_from
        and (fx_rates.valid_to is null or subscriptions.start_date < fx_rates.valid_to)
),

final as (
    select
        subscription_id,
        account_id,
        plan_name,
        product_line,
        start_date,
        end_date,
        billing_interval,
        billing_interval_months,
        amount,
        currency_code,
        seats,
        is_per_seat,
        plan_name in (
            {%- for plan in var('revenue_trial_plans') %}'{{ plan | lower }}'{{ ", " if not loop.last }}{% endfor -%}
        ) as is_trial,
        fx_rate_to_reporting,
        cast(
            amount
            * case when is_per_seat then seats else 1 end
            * fx_rate_to_reporting
            / billing_interval_months
            as decimal(18, 6)
        ) as mrr_reporting,
        cast(
            amount
            * case when is_per_seat then seats else 1 end
            * fx_rate_to_reporting
            * 12
            / billing_interval_months
            as decimal(18, 2)
        ) as arr_reporting
    from rated
)

select * from final
