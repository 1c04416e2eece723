{#- Share of accounts and of ARR per assigned tier on the as-of date against the
    target ranges of seed tier_targets, with flags when a tier is outside its range
    and when the tiering does not prioritise (Tier 1 above its maximum share of
    accounts). Only live accounts have a tier and count (doc block account_status). With
    no live account at all every share is null and no flag is raised (false, never
    null). Doc block tier_distribution. -#}
with tiers as (
    select * from {{ ref('int_account_tiers_assigned') }}
    where as_of_date = {{ as_of_date() }}
      and account_status = 'live'
),

tier_targets as (
    select * from {{ ref('tier_targets') }}
),

per_tier as (
    select
        assigned_tier_number as tier_number,
        count(*) as account_count,
        sum(arr_reporting) as arr_reporting
    from tiers
    group by assigned_tier_number
),

totals as (
    select
        count(*) as total_accounts,
        coalesce(sum(arr_reporting), 0) as total_arr_reporting
    from tiers
),

shares as (
    select
        tier_targets.tier_number,
        tier_targets.tier_name,
        tier_targets.report_color as tier_color,
        coalesce(per_tier.account_count, 0) as account_count,
        cast(coalesce(per_tier.arr_reporting, 0) as decimal(18, 2)) as arr_reporting,
        totals.total_accounts,
        cast(totals.total_arr_reporting as decimal(18, 2)) as total_arr_reporting,
        case when totals.total_accounts > 0
            then cast(1 as double) * coalesce(per_tier.account_count, 0) / totals.total_accounts end as account_share,
        case when totals.total_arr_reporting > 0
            then cast(1 as double) * coalesce(per_tier.arr_reporting, 0) / totals.total_arr_reporting end as arr_share,
        tier_targets.min_account_share,
        tier_targets.max_account_share,
        tier_targets.min_arr_share,
        tier_targets.max_arr_share
    from tier_targets
    cross join totals
    left join per_tier
        on tier_targets.tier_number = per_tier.tier_number
),

final as (
    select
        {{ as_of_date() }} as as_of_date,
        *,
        coalesce(
            account_share < coalesce(min_account_share, 0) or account_share > coalesce(max_account_share, 1),
            false
        ) as is_account_share_off_target,
        coalesce(
            arr_share < coalesce(min_arr_share, 0) or arr_share > coalesce(max_arr_share, 1),
            false
        ) as is_arr_share_off_target,
        coalesce(tier_number = 1 and account_share > max_account_share, false) as is_not_prioritising
    from shares
)

select * from final
