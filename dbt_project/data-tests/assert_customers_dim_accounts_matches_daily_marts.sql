{#- dim_accounts (as of the run date) carries the same tier, health and segments as
    the daily marts' rows of the run date. Returns the accounts that disagree. -#}
with dim_accounts as (
    select * from {{ ref('dim_accounts') }}
),

tiers as (
    select * from {{ ref('fct_account_tiers_daily') }}
    where as_of_date = {{ as_of_date() }}
),

health as (
    select * from {{ ref('fct_account_health_daily') }}
    where as_of_date = {{ as_of_date() }}
),

segments as (
    select * from {{ ref('fct_account_segments_daily') }}
    where as_of_date = {{ as_of_date() }}
),

final as (
    select dim_accounts.account_id
    from dim_accounts
    left join tiers
        on dim_accounts.account_id = tiers.account_id
    left join health
        on dim_accounts.account_id = health.account_id
    left join segments
        on dim_accounts.account_id = segments.account_id
    where tiers.account_id is null
       or health.account_id is null
       or segments.account_id is null
       or coalesce(dim_accounts.assigned_tier, '-') <> coalesce(tiers.assigned_tier, '-')
       or coalesce(dim_accounts.tier_number, 0) <> coalesce(tiers.tier_number, 0)
       or dim_accounts.account_status <> tiers.account_status
       or coalesce(dim_accounts.health_status, '-') <> coalesce(health.health_status, '-')
       or dim_accounts.adoption_stage <> segments.adoption_stage
       or dim_accounts.value_band <> segments.value_band
       or coalesce(dim_accounts.plan_name, '-') <> coalesce(segments.plan_name, '-')
)

select * from final
