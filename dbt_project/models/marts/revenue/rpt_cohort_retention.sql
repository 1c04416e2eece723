{#- Logo and revenue retention of signup cohorts (first month as a customer) by months
    since start, for all accounts of the cohort (starting_tier 'All') and per tier the
    account was in when it started (int_account_segments_monthly, dimension 'tier', at
    its first customer month). Revenue retention = the cohort's MRR now / its MRR in its
    first month (net: expansion of survivors included). is_backcast: a member's starting
    tier was backcast (before the daily history); is_period_complete: the month observed
    is not the one holding the as-of date. -#}
with account_months as (
    select * from {{ ref('int_account_mrr_monthly') }}
),

segments as (
    select * from {{ ref('int_account_segments_monthly') }}
),

tier_targets as (
    select * from {{ ref('tier_targets') }}
),

cohort_members as (
    select
        account_months.account_id,
        account_months.first_active_month as cohort_month,
        account_months.mrr_reporting as cohort_starting_mrr,
        segments.segment_value as starting_tier,
        coalesce(segments.segment_source = 'backcast', false) as is_tier_backcast
    from account_months
    left join segments
        on segments.account_id = account_months.account_id
        and segments.month_start_date = account_months.month_start_date
        and segments.segment_dimension = 'tier'
    where account_months.month_start_date = account_months.first_active_month
),

member_tiers as (
    select account_id, cohort_month, cohort_starting_mrr, coalesce(starting_tier, 'unknown') as starting_tier,
        is_tier_backcast
    from cohort_members
    union all
    select account_id, cohort_month, cohort_starting_mrr, 'All' as starting_tier, is_tier_backcast
    from cohort_members
),

member_months as (
    select
        member_tiers.cohort_month,
        member_tiers.starting_tier,
        account_months.months_since_first_active as months_since_start,
        account_months.month_start_date,
        member_tiers.account_id,
        member_tiers.cohort_starting_mrr,
        member_tiers.is_tier_backcast,
        account_months.is_active_customer,
        account_months.mrr_reporting
    from member_tiers
    inner join account_months
        on account_months.account_id = member_tiers.account_id
        and account_months.month_start_date >= member_tiers.cohort_month
),

aggregated as (
    select
        cohort_month,
        starting_tier,
        months_since_start,
        month_start_date,
        count(*) as cohort_logos,
        sum(cohort_starting_mrr) as cohort_starting_mrr,
        sum(case when is_active_customer then 1 else 0 end) as active_logos,
        sum(mrr_reporting) as mrr_reporting,
        sum(case when is_tier_backcast then 1 else 0 end) as backcast_accounts
    from member_months
    group by cohort_month, starting_tier, months_since_start, month_start_date
),

final as (
    select
        cast(aggregated.cohort_month as date) as cohort_month,
        cast(aggregated.starting_tier as {{ dbt.type_string() }}) as starting_tier,
        cast(
            case
                when aggregated.starting_tier = 'All' then 0
                else coalesce(tier_targets.tier_number, 999)
            end as integer
        ) as starting_tier_sort_key,
        cast(aggregated.months_since_start as integer) as months_since_start,
        cast(aggregated.month_start_date as date) as month_start_date,
        cast({{ revenue_is_period_complete('aggregated.month_start_date', 1) }} as boolean) as is_period_complete,
        cast(aggregated.backcast_accounts > 0 as boolean) as is_backcast,
        cast(aggregated.backcast_accounts as integer) as backcast_accounts,
        cast('{{ var("reporting_currency") }}' as {{ dbt.type_string() }}) as reporting_currency,
        cast(aggregated.cohort_logos as integer) as cohort_logos,
        cast(aggregated.active_logos as integer) as active_logos,
        cast(aggregated.cohort_starting_mrr as decimal(18, 2)) as cohort_starting_mrr_reporting,
        cast(aggregated.mrr_reporting as decimal(18, 2)) as mrr_reporting,
        cast(cast(1 as double) * aggregated.active_logos / aggregated.cohort_logos as decimal(18, 6)) as logo_retention,
        cast(
            case
                when aggregated.cohort_starting_mrr > 0 then cast(1 as double) * aggregated.mrr_reporting / aggregated.cohort_starting_mrr
            end as decimal(18, 6)
        ) as revenue_retention
    from aggregated
    left join tier_targets
        on tier_targets.tier_name = aggregated.starting_tier
)

select * from final
