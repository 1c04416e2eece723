{#- The tier distribution accounts for every live account exactly once: its account
    counts add up to the live accounts of the run date in fct_account_tiers_daily (the
    accounts with a tier; doc block account_status), and its shares add up to 1. -#}
with distribution as (
    select * from {{ ref('rpt_tier_distribution') }}
),

tiers as (
    select * from {{ ref('fct_account_tiers_daily') }}
    where as_of_date = {{ as_of_date() }}
),

segments as (
    select * from {{ ref('fct_account_segments_daily') }}
    where as_of_date = {{ as_of_date() }}
),

counted as (
    select count(*) as accounts
    from tiers
    inner join segments
        on tiers.account_id = segments.account_id
    where segments.has_active_subscription
      and tiers.tier_number is not null
),

totals as (
    select
        sum(account_count) as accounts,
        sum(account_share) as account_share
    from distribution
),

final as (
    select totals.*, counted.accounts as expected_accounts
    from totals
    cross join counted
    where totals.accounts <> counted.accounts
       or (counted.accounts > 0 and abs(totals.account_share - 1) > 0.000001)
)

select * from final
