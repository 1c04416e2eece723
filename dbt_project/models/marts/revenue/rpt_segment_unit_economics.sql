{#- Segment unit economics per month (doc block revenue_unit_economics):
    ACV = ending ARR / ending logos (the subscriptions' exact ARR; 12 x ARPA up to the
    cent rounding of MRR); annual logo churn = 1 - trailing logo retention, annualised when the
    window is not 12 months; lifetime = 1 / annual churn, capped at var
    revenue_ltv_max_lifetime_years; LTV = ACV x var revenue_ltv_gross_margin x lifetime
    x NRR factor (annualised trailing NRR when var revenue_ltv_apply_nrr, else 1).
    CAC = trailing acquisition spend / trailing new logos; payback months = CAC / ARPA;
    LTV:CAC = LTV / CAC. Targets from seed revenue_segment_targets. -#}
{%- set window = var('revenue_trailing_window_months') | int -%}
{%- set annualise = 12.0 / window -%}
with inputs as (
    select * from {{ ref('int_segment_unit_economics_inputs') }}
),

targets as (
    select * from {{ ref('revenue_segment_targets') }}
),

tier_targets as (
    select * from {{ ref('tier_targets') }}
),

rates as (
    select
        *,
        case
            when trailing_logo_retention is not null
                then 1 - power(trailing_logo_retention, {{ annualise }})
        end as annual_logo_churn_rate,
        {% if var('revenue_ltv_apply_nrr') -%}
        coalesce(power(trailing_net_revenue_retention, {{ annualise }}), 1.0)
        {%- else -%}
        1.0
        {%- endif %} as nrr_factor,
        case
            when trailing_new_logos > 0 and trailing_acquisition_spend is not null
                then cast(1 as double) * trailing_acquisition_spend / trailing_new_logos
        end as cac_reporting
    from inputs
),

lifetimes as (
    select
        *,
        case
            when annual_logo_churn_rate is null then null
            when annual_logo_churn_rate <= 1.0 / {{ var('revenue_ltv_max_lifetime_years') }}
                then {{ var('revenue_ltv_max_lifetime_years') }}
            else 1.0 / annual_logo_churn_rate
        end as customer_lifetime_years
    from rates
),

economics as (
    select
        *,
        acv_reporting * {{ var('revenue_ltv_gross_margin') }} * customer_lifetime_years * nrr_factor
            as ltv_reporting
    from lifetimes
),

final as (
    select
        cast(economics.month_start_date as date) as month_start_date,
        cast({{ revenue_is_period_complete('economics.month_start_date', 1) }} as boolean) as is_period_complete,
        cast(economics.segment_dimension as {{ dbt.type_string() }}) as segment_dimension,
        cast(economics.segment_value as {{ dbt.type_string() }}) as segment_value,
        cast(
            {{ revenue_segment_sort_key('economics.segment_dimension', 'economics.segment_value', 'tier_targets.tier_number') }}
            as integer
        ) as segment_sort_key,
        cast(economics.segment_source as {{ dbt.type_string() }}) as segment_source,
        cast(economics.segment_source = 'backcast' as boolean) as is_backcast,
        cast(targets.economics_segment as {{ dbt.type_string() }}) as economics_segment,
        cast('{{ var("reporting_currency") }}' as {{ dbt.type_string() }}) as reporting_currency,
        cast(economics.ending_logos as integer) as ending_logos,
        cast(economics.ending_mrr_reporting as decimal(18, 2)) as ending_mrr_reporting,
        cast({{ round_decimal('economics.arpa_reporting', 2) }} as decimal(18, 2)) as arpa_reporting,
        cast({{ round_decimal('economics.acv_reporting', 2) }} as decimal(18, 2)) as acv_reporting,
        cast(economics.trailing_cohort_logos as integer) as trailing_cohort_logos,
        cast(economics.trailing_logo_retention as decimal(18, 6)) as trailing_logo_retention,
        cast(economics.annual_logo_churn_rate as decimal(18, 6)) as annual_logo_churn_rate,
        cast(economics.trailing_net_revenue_retention as decimal(18, 6)) as trailing_net_revenue_retention,
        cast(economics.nrr_factor as decimal(18, 6)) as ltv_nrr_factor,
        cast(economics.customer_lifetime_years as decimal(18, 6)) as customer_lifetime_years,
        cast({{ round_decimal('economics.ltv_reporting', 2) }} as decimal(18, 2)) as ltv_reporting,
        cast(economics.trailing_new_logos as integer) as trailing_new_logos,
        cast(economics.trailing_acquisition_spend as decimal(18, 2)) as trailing_acquisition_spend_reporting,
        cast({{ round_decimal('economics.cac_reporting', 2) }} as decimal(18, 2)) as cac_reporting,
        cast(
            case when economics.arpa_reporting > 0 then economics.cac_reporting / economics.arpa_reporting end
            as decimal(18, 6)
        ) as cac_payback_months,
        cast(
            case when economics.cac_reporting > 0 then economics.ltv_reporting / economics.cac_reporting end
            as decimal(18, 6)
        ) as ltv_to_cac_ratio,
        cast(targets.target_cac_max as decimal(18, 2)) as target_cac_max_reporting,
        cast(targets.target_payback_months_max as decimal(18, 6)) as target_payback_months_max,
        cast(targets.required_ltv_to_cac as decimal(18, 6)) as required_ltv_to_cac,
        cast(
            case when economics.cac_reporting > 0 then economics.ltv_reporting / economics.cac_reporting end
            - targets.required_ltv_to_cac
            as decimal(18, 6)
        ) as ltv_to_cac_gap_to_target
    from economics
    left join targets
        on targets.segment_dimension = economics.segment_dimension
        and targets.segment_value = economics.segment_value
    left join tier_targets
        on economics.segment_dimension = 'tier'
        and tier_targets.tier_name = economics.segment_value
)

select * from final
