{#- One row per CSM on the as-of date: the size of their book (accounts they own) and
    its ARR, with the load against the tier target ratios (seed
    tier_engagement_models): the sum over their accounts of 1 / target accounts per
    CSM of the account's tier is the CSM capacity the book needs (1.0 = one full CSM).
    Only live accounts count (doc block account_status): a CSM with 10 live and 2
    churned accounts has a book of 10. -#}
with tiers as (
    select * from {{ ref('int_account_tiers_assigned') }}
    where as_of_date = {{ as_of_date() }}
      and account_status = 'live'
),

accounts as (
    select * from {{ ref('int_accounts_enriched') }}
),

engagement_models as (
    select * from {{ ref('tier_engagement_models') }}
),

owned as (
    select
        accounts.csm_owner_id,
        accounts.account_id,
        tiers.assigned_tier_number,
        tiers.arr_reporting,
        engagement_models.accounts_per_csm_target
    from accounts
    inner join tiers
        on accounts.account_id = tiers.account_id
    left join engagement_models
        on tiers.assigned_tier_number = engagement_models.tier_number
    where accounts.csm_owner_id is not null
),

final as (
    select
        csm_owner_id,
        {{ as_of_date() }} as as_of_date,
        count(*) as account_count,
        cast(sum(arr_reporting) as decimal(18, 2)) as arr_reporting,
        sum(case when assigned_tier_number = 1 then 1 else 0 end) as tier_1_accounts,
        sum(case when assigned_tier_number = 2 then 1 else 0 end) as tier_2_accounts,
        sum(case when assigned_tier_number = 3 then 1 else 0 end) as tier_3_accounts,
        sum(case when assigned_tier_number = 4 then 1 else 0 end) as tier_4_accounts,
        {#- decimal terms: an exact sum, whatever the order rows are added in (a float sum
            can differ in the last digit between runs) -#}
        sum(
            case
                when accounts_per_csm_target > 0 then cast(1.0 / accounts_per_csm_target as decimal(18, 8))
                else 0
            end
        ) as target_capacity_needed
    from owned
    group by csm_owner_id
)

select * from final
