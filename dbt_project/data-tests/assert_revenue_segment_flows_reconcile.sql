{#- For every period (month and quarter), segment dimension and segment:
    start + new + expansion + reactivation - contraction - churn = end, to the cent, and
    the same for logos; and the total's ending MRR of one period is the next period's
    starting MRR (segments may differ between periods because accounts move, the total
    may not). -#}
with monthly as (
    select 'month' as period_type, * from {{ ref('rpt_segment_retention_monthly') }}
),

quarterly as (
    select 'quarter' as period_type, * from {{ ref('rpt_segment_retention_quarterly') }}
),

periods as (
    select * from monthly
    union all
    select * from quarterly
),

flow_breaks as (
    select
        period_type,
        period_start_date,
        segment_dimension,
        segment_value,
        'mrr flows do not reconcile' as problem
    from periods
    where starting_mrr_reporting + new_mrr_reporting + expansion_mrr_reporting
        + reactivation_mrr_reporting - contraction_mrr_reporting - churned_mrr_reporting
        <> ending_mrr_reporting
       or starting_logos + new_logos + reactivated_logos - churned_logos <> ending_logos
),

totals as (
    select
        *,
        lead(starting_mrr_reporting) over (partition by period_type order by period_start_date)
            as next_starting_mrr_reporting,
        lead(starting_logos) over (partition by period_type order by period_start_date)
            as next_starting_logos
    from periods
    where segment_dimension = 'total'
),

continuity_breaks as (
    select
        period_type,
        period_start_date,
        segment_dimension,
        segment_value,
        'total ending != next starting' as problem
    from totals
    where next_starting_mrr_reporting is not null
      and (
          next_starting_mrr_reporting <> ending_mrr_reporting
          or next_starting_logos <> ending_logos
      )
)

select * from flow_breaks
union all
select * from continuity_breaks
