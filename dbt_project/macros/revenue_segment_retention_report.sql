{#- The body of rpt_segment_retention_monthly / _quarterly: one row per period, segment
    dimension and segment value, with flows, ratios, trailing retention and the gap to
    the segment's targets (seed revenue_segment_targets), whether the period is complete
    (not the one holding the as-of date) and whether its membership is backcast, and a
    sort key for BI. Definitions: doc blocks in models/marts/revenue/_revenue__docs.md. -#}
{% macro revenue_segment_retention_report(period_type) -%}
with segment_periods as (
    select * from {{ ref('int_segment_retention_periods') }}
    where period_type = '{{ period_type }}'
),

targets as (
    select * from {{ ref('revenue_segment_targets') }}
),

tier_targets as (
    select * from {{ ref('tier_targets') }}
),

final as (
    select
        cast(segment_periods.period_start_date as date) as period_start_date,
        cast(segment_periods.last_month_in_period as date) as period_last_month,
        cast(
            {{ revenue_is_period_complete('segment_periods.period_start_date', 1 if period_type == 'month' else 3) }}
            as boolean
        ) as is_period_complete,
        cast(segment_periods.segment_dimension as {{ dbt.type_string() }}) as segment_dimension,
        cast(segment_periods.segment_value as {{ dbt.type_string() }}) as segment_value,
        cast(
            {{ revenue_segment_sort_key(
                'segment_periods.segment_dimension', 'segment_periods.segment_value', 'tier_targets.tier_number'
            ) }} as integer
        ) as segment_sort_key,
        cast(segment_periods.segment_source as {{ dbt.type_string() }}) as segment_source,
        cast(segment_periods.backcast_accounts > 0 as boolean) as is_backcast,
        cast(segment_periods.backcast_accounts as integer) as backcast_accounts,
        cast('{{ var("reporting_currency") }}' as {{ dbt.type_string() }}) as reporting_currency,
        cast(segment_periods.starting_mrr_reporting as decimal(18, 2)) as starting_mrr_reporting,
        cast(segment_periods.new_mrr_reporting as decimal(18, 2)) as new_mrr_reporting,
        cast(segment_periods.expansion_mrr_reporting as decimal(18, 2)) as expansion_mrr_reporting,
        cast(segment_periods.contraction_mrr_reporting as decimal(18, 2)) as contraction_mrr_reporting,
        cast(segment_periods.churned_mrr_reporting as decimal(18, 2)) as churned_mrr_reporting,
        cast(segment_periods.reactivation_mrr_reporting as decimal(18, 2)) as reactivation_mrr_reporting,
        cast(segment_periods.ending_mrr_reporting as decimal(18, 2)) as ending_mrr_reporting,
        cast(segment_periods.starting_logos as integer) as starting_logos,
        cast(segment_periods.new_logos as integer) as new_logos,
        cast(segment_periods.churned_logos as integer) as churned_logos,
        cast(segment_periods.reactivated_logos as integer) as reactivated_logos,
        cast(segment_periods.ending_logos as integer) as ending_logos,
        cast(segment_periods.gross_revenue_retention as decimal(18, 6)) as gross_revenue_retention,
        cast(segment_periods.net_revenue_retention as decimal(18, 6)) as net_revenue_retention,
        cast(segment_periods.logo_retention as decimal(18, 6)) as logo_retention,
        cast(segment_periods.expansion_rate as decimal(18, 6)) as expansion_rate,
        cast(segment_periods.quick_ratio as decimal(18, 6)) as quick_ratio,
        cast(segment_periods.trailing_cohort_logos as integer) as trailing_cohort_logos,
        cast(segment_periods.trailing_cohort_starting_mrr as decimal(18, 2)) as trailing_cohort_starting_mrr_reporting,
        cast(segment_periods.trailing_cohort_ending_mrr as decimal(18, 2)) as trailing_cohort_ending_mrr_reporting,
        cast(segment_periods.trailing_gross_revenue_retention as decimal(18, 6)) as trailing_gross_revenue_retention,
        cast(segment_periods.trailing_net_revenue_retention as decimal(18, 6)) as trailing_net_revenue_retention,
        cast(segment_periods.trailing_logo_retention as decimal(18, 6)) as trailing_logo_retention,
        cast(segment_periods.trailing_expansion_rate as decimal(18, 6)) as trailing_expansion_rate,
        cast(1 - segment_periods.trailing_gross_revenue_retention as decimal(18, 6)) as trailing_revenue_churn_rate,
        cast(targets.target_retention_rate as decimal(18, 6)) as target_retention_rate,
        cast(segment_periods.trailing_gross_revenue_retention - targets.target_retention_rate as decimal(18, 6))
            as retention_gap_to_target,
        cast(targets.target_annual_expansion_rate as decimal(18, 6)) as target_annual_expansion_rate,
        cast(segment_periods.trailing_expansion_rate - targets.target_annual_expansion_rate as decimal(18, 6))
            as expansion_gap_to_target,
        cast(targets.annual_churn_tolerance_min as decimal(18, 6)) as annual_churn_tolerance_min,
        cast(targets.annual_churn_tolerance_max as decimal(18, 6)) as annual_churn_tolerance_max,
        cast(
            targets.annual_churn_tolerance_max - (1 - segment_periods.trailing_gross_revenue_retention)
            as decimal(18, 6)
        ) as churn_headroom_to_tolerance,
        cast(
            case
                when targets.annual_churn_tolerance_max is null
                     or segment_periods.trailing_gross_revenue_retention is null then null
                else 1 - segment_periods.trailing_gross_revenue_retention <= targets.annual_churn_tolerance_max
            end as boolean
        ) as is_churn_within_tolerance
    from segment_periods
    left join targets
        on targets.segment_dimension = segment_periods.segment_dimension
        and targets.segment_value = segment_periods.segment_value
    left join tier_targets
        on segment_periods.segment_dimension = 'tier'
        and tier_targets.tier_name = segment_periods.segment_value
)

select * from final
{%- endmacro %}

{#- Integer sort key of a reporting segment, for BI tools (doc block
    revenue_segment_sort_key): 0 for the total; tiers by tier number (seed tier_targets,
    joined by the caller as `tier_number_sql`); value and company-size bands Enterprise,
    Mid-market, SMB; health healthy, at-risk, critical; adoption early, growth, mature;
    other dimensions alphabetical; 'unknown' (and any value outside a known order) last. -#}
{% macro revenue_segment_sort_key(dimension, value, tier_number_sql) -%}
    case
        when {{ dimension }} = 'total' then 0
        when {{ value }} = 'unknown' then 999
        when {{ dimension }} = 'tier' then coalesce({{ tier_number_sql }}, 999)
        when {{ dimension }} in ('value_band', 'company_size_band') then
            case {{ value }} when 'Enterprise' then 1 when 'Mid-market' then 2 when 'SMB' then 3 else 999 end
        when {{ dimension }} = 'health_status' then
            case {{ value }} when 'healthy' then 1 when 'at-risk' then 2 when 'critical' then 3 else 999 end
        when {{ dimension }} = 'adoption_stage' then
            case {{ value }} when 'early' then 1 when 'growth' then 2 when 'mature' then 3 else 999 end
        else dense_rank() over (partition by {{ dimension }} order by {{ value }})
    end
{%- endmacro %}

{#- True once the period's last day is on or before the as-of date: its MRR is then
    measured on its last day. The period in progress (its MRR measured on the as-of date,
    before its last day) is not complete. On the night of a month's last day that month
    is complete: the night's own day is its last (issue 17: comparing the period's
    exclusive end with the as-of date reported it as in progress). -#}
{% macro revenue_is_period_complete(period_start_sql, period_months) -%}
    (cast({{ dbt.dateadd('day', -1, dbt.dateadd('month', period_months, period_start_sql)) }} as date)
        <= {{ as_of_date() }})
{%- endmacro %}
