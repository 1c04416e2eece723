{#- Published roll-up: per CSM on the run date, the book (accounts, ARR, accounts per
    tier), the capacity it needs at the tiers' target ratios and the cost to serve. -#}
with books as (
    select * from {{ ref('int_csm_books_aggregated') }}
),

cost_to_serve as (
    select * from {{ ref('int_accounts_cost_to_serve') }}
),

csm_costs as (
    select
        csm_owner_id,
        sum(annual_cost_to_serve) as annual_cost_to_serve,
        sum(case when is_outside_cost_band then 1 else 0 end) as accounts_outside_cost_band
    from cost_to_serve
    where csm_owner_id is not null
    group by csm_owner_id
),

final as (
    select
        cast(books.csm_owner_id as {{ dbt.type_string() }}) as csm_owner_id,
        cast(books.as_of_date as date) as as_of_date,
        cast(books.account_count as integer) as account_count,
        cast(books.arr_reporting as decimal(18, 2)) as arr_reporting,
        cast(books.tier_1_accounts as integer) as tier_1_accounts,
        cast(books.tier_2_accounts as integer) as tier_2_accounts,
        cast(books.tier_3_accounts as integer) as tier_3_accounts,
        cast(books.tier_4_accounts as integer) as tier_4_accounts,
        cast(round(books.target_capacity_needed, 2) as decimal(9, 2)) as target_capacity_needed,
        cast(books.target_capacity_needed > 1 as boolean) as is_over_capacity,
        cast(
            cast(1 as double) * {{ var('csm_annual_cost') }} / books.account_count
            + {{ var('cs_shared_cost_per_account') }} + {{ var('cs_technology_cost_per_account') }}
            as decimal(18, 2)
        ) as annual_cost_per_account,
        cast(csm_costs.annual_cost_to_serve as decimal(18, 2)) as annual_cost_to_serve,
        cast(
            case when books.arr_reporting > 0 then csm_costs.annual_cost_to_serve / books.arr_reporting end
            as decimal(18, 6)
        ) as cost_share_of_arr,
        cast(csm_costs.accounts_outside_cost_band as integer) as accounts_outside_cost_band
    from books
    left join csm_costs
        on books.csm_owner_id = csm_costs.csm_owner_id
)

select * from final
