{#- Annual cost to serve per account on the as-of date: fully loaded CSM cost divided
    by the accounts in the owning CSM's book, plus shared resources and technology
    per account (all vars), and that cost as a share of the account's ARR against
    the 5-15% band. Accounts without a CSM carry no direct CSM cost. Live accounts only
    (doc block account_status): a churned account costs nothing to serve. Doc block
    cost_to_serve. -#}
with tiers as (
    select * from {{ ref('int_account_tiers_assigned') }}
    where as_of_date = {{ as_of_date() }}
      and account_status = 'live'
),

accounts as (
    select * from {{ ref('int_accounts_enriched') }}
),

csm_books as (
    select * from {{ ref('int_csm_books_aggregated') }}
),

costed as (
    select
        tiers.account_id,
        tiers.as_of_date,
        accounts.csm_owner_id,
        tiers.assigned_tier_number,
        tiers.assigned_tier,
        tiers.arr_reporting,
        csm_books.account_count as csm_book_size,
        case
            when csm_books.account_count > 0
                then cast(1 as double) * {{ var('csm_annual_cost') }} / csm_books.account_count
            else 0
        end as direct_csm_cost,
        {{ var('cs_shared_cost_per_account') }} as shared_cost,
        {{ var('cs_technology_cost_per_account') }} as technology_cost
    from tiers
    inner join accounts
        on tiers.account_id = accounts.account_id
    left join csm_books
        on accounts.csm_owner_id = csm_books.csm_owner_id
),

shares as (
    select
        *,
        cast(direct_csm_cost + shared_cost + technology_cost as decimal(18, 2)) as annual_cost_to_serve,
        case
            when arr_reporting > 0
                then (direct_csm_cost + shared_cost + technology_cost) / arr_reporting
        end as cost_share_of_arr
    from costed
),

final as (
    select
        account_id,
        as_of_date,
        csm_owner_id,
        assigned_tier_number,
        assigned_tier,
        arr_reporting,
        csm_book_size,
        cast(direct_csm_cost as decimal(18, 2)) as direct_csm_cost,
        cast(shared_cost as decimal(18, 2)) as shared_cost,
        cast(technology_cost as decimal(18, 2)) as technology_cost,
        annual_cost_to_serve,
        cast({{ round_decimal('cost_share_of_arr', 6) }} as decimal(18, 6)) as cost_share_of_arr,
        cast({{ round_decimal('100 * cost_share_of_arr', 1) }} as decimal(9, 1)) as cost_share_of_arr_pct,
        cost_share_of_arr is not null
            and (cost_share_of_arr < {{ var('cs_cost_share_min') }} or cost_share_of_arr > {{ var('cs_cost_share_max') }})
            as is_outside_cost_band,
        case
            when cost_share_of_arr is null then 'no revenue'
            when cost_share_of_arr < {{ var('cs_cost_share_min') }} then 'below band'
            when cost_share_of_arr > {{ var('cs_cost_share_max') }} then 'above band'
            else 'within band'
        end as cost_band_status
    from shares
)

select * from final
