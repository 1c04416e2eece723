{#- The measured inputs of segment unit economics per month, segment dimension and
    value: ARPA and ACV at the month's end (ACV from the exact ARR of the subscriptions,
    never 12 x a rounded MRR), trailing logo retention and NRR, new logos and (when
    seed revenue_acquisition_spend holds rows) acquisition spend over the trailing
    window (var revenue_trailing_window_months), converted to the reporting currency at
    the rate valid on the spend month. -#}
{%- set window = var('revenue_trailing_window_months') | int -%}
with segment_months as (
    select * from {{ ref('int_segment_retention_periods') }}
    where period_type = 'month'
),

acquisition_spend as (
    select * from {{ ref('revenue_acquisition_spend') }}
),

fx_rates as (
    select * from {{ ref('int_fx_rates_to_reporting') }}
),

spend_reporting as (
    select
        acquisition_spend.segment_dimension,
        acquisition_spend.segment_value,
        cast(acquisition_spend.month_start_date as date) as month_start_date,
        acquisition_spend.acquisition_spend * fx_rates.rate_to_reporting as acquisition_spend_reporting
    from acquisition_spend
    left join fx_rates
        on fx_rates.currency_code = upper(trim(acquisition_spend.currency_code))
        and cast(acquisition_spend.month_start_date as date) >= fx_rates.valid_from
        and (fx_rates.valid_to is null or cast(acquisition_spend.month_start_date as date) < fx_rates.valid_to)
),

trailing_window as (
    select
        segment_months.period_start_date,
        segment_months.segment_dimension,
        segment_months.segment_value,
        sum(earlier.new_logos) as trailing_new_logos
    from segment_months
    inner join segment_months as earlier
        on earlier.segment_dimension = segment_months.segment_dimension
        and earlier.segment_value = segment_months.segment_value
        and earlier.period_start_date <= segment_months.period_start_date
        and earlier.period_start_date
            > cast({{ dbt.dateadd('month', -1 * window, 'segment_months.period_start_date') }} as date)
    group by segment_months.period_start_date, segment_months.segment_dimension, segment_months.segment_value
),

trailing_spend as (
    select
        segment_months.period_start_date,
        segment_months.segment_dimension,
        segment_months.segment_value,
        count(spend_reporting.month_start_date) as spend_months,
        sum(spend_reporting.acquisition_spend_reporting) as trailing_acquisition_spend
    from segment_months
    inner join spend_reporting
        on spend_reporting.segment_dimension = segment_months.segment_dimension
        and spend_reporting.segment_value = segment_months.segment_value
        and spend_reporting.month_start_date <= segment_months.period_start_date
        and spend_reporting.month_start_date
            > cast({{ dbt.dateadd('month', -1 * window, 'segment_months.period_start_date') }} as date)
    group by segment_months.period_start_date, segment_months.segment_dimension, segment_months.segment_value
),

final as (
    select
        segment_months.period_start_date as month_start_date,
        segment_months.segment_dimension,
        segment_months.segment_value,
        segment_months.segment_source,
        segment_months.ending_logos,
        segment_months.ending_mrr_reporting,
        case
            when segment_months.ending_logos > 0
                then cast(1 as double) * segment_months.ending_mrr_reporting / segment_months.ending_logos
        end as arpa_reporting,
        segment_months.ending_arr_reporting,
        case
            when segment_months.ending_logos > 0
                then cast(1 as double) * segment_months.ending_arr_reporting / segment_months.ending_logos
        end as acv_reporting,
        segment_months.trailing_cohort_logos,
        segment_months.trailing_logo_retention,
        segment_months.trailing_net_revenue_retention,
        trailing_window.trailing_new_logos,
        trailing_spend.trailing_acquisition_spend
    from segment_months
    left join trailing_window
        on trailing_window.period_start_date = segment_months.period_start_date
        and trailing_window.segment_dimension = segment_months.segment_dimension
        and trailing_window.segment_value = segment_months.segment_value
    left join trailing_spend
        on trailing_spend.period_start_date = segment_months.period_start_date
        and trailing_spend.segment_dimension = segment_months.segment_dimension
        and trailing_spend.segment_value = segment_months.segment_value
)

select * from final
