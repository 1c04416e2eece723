{#- Published roll-up: coverage economics per tier on the run date: accounts and ARR,
    CSMs assigned and actual accounts per CSM against the tier's target ratio (seed
    tier_engagement_models), CSMs needed at the target ratio, cost to serve per
    account at the target ratio and as a share of the tier's average ARR against the
    5-15% band, and the actual cost to serve of the tier's accounts. -#}
with cost_to_serve as (
    select * from {{ ref('int_accounts_cost_to_serve') }}
),

engagement_models as (
    select * from {{ ref('tier_engagement_models') }}
),

per_tier as (
    select
        assigned_tier_number as tier_number,
        count(*) as account_count,
        sum(arr_reporting) as arr_reporting,
        sum(case when csm_owner_id is not null then 1 else 0 end) as accounts_with_csm,
        count(distinct csm_owner_id) as csms_assigned,
        sum(annual_cost_to_serve) as annual_cost_to_serve,
        sum(case when is_outside_cost_band then 1 else 0 end) as accounts_outside_cost_band
    from cost_to_serve
    group by assigned_tier_number
),

economics as (
    select
        engagement_models.tier_number,
        engagement_models.tier_name,
        coalesce(per_tier.account_count, 0) as account_count,
        coalesce(per_tier.arr_reporting, 0) as arr_reporting,
        case when per_tier.account_count > 0 then per_tier.arr_reporting / per_tier.account_count end as avg_arr_per_account,
        coalesce(per_tier.accounts_with_csm, 0) as accounts_with_csm,
        coalesce(per_tier.csms_assigned, 0) as csms_assigned,
        case when per_tier.csms_assigned > 0 then cast(1 as double) * per_tier.accounts_with_csm / per_tier.csms_assigned end
            as actual_accounts_per_csm,
        engagement_models.accounts_per_csm_min,
        engagement_models.accounts_per_csm_max,
        engagement_models.accounts_per_csm_target,
        case
            when engagement_models.accounts_per_csm_target > 0
                then ceil(cast(1 as double) * coalesce(per_tier.account_count, 0) / engagement_models.accounts_per_csm_target)
        end as csms_needed_at_target,
        case
            when engagement_models.accounts_per_csm_target > 0
                then cast(1 as double) * {{ var('csm_annual_cost') }} / engagement_models.accounts_per_csm_target
            else 0
        end
        + {{ var('cs_shared_cost_per_account') }}
        + {{ var('cs_technology_cost_per_account') }} as cost_per_account_at_target,
        per_tier.annual_cost_to_serve,
        coalesce(per_tier.accounts_outside_cost_band, 0) as accounts_outside_cost_band
    from engagement_models
    left join per_tier
        on engagement_models.tier_number = per_tier.tier_number
),

final as (
    select
        {{ as_of_date() }} as as_of_date,
        cast(tier_number as integer) as tier_number,
        cast(tier_name as {{ dbt.type_string() }}) as tier_name,
        cast(account_count as integer) as account_count,
        cast(arr_reporting as decimal(18, 2)) as arr_reporting,
        cast(avg_arr_per_account as decimal(18, 2)) as avg_arr_per_account,
        cast(accounts_with_csm as integer) as accounts_with_csm,
        cast(csms_assigned as integer) as csms_assigned,
        cast(actual_accounts_per_csm as decimal(9, 1)) as actual_accounts_per_csm,
        cast(accounts_per_csm_min as integer) as accounts_per_csm_min,
        cast(accounts_per_csm_max as integer) as accounts_per_csm_max,
        cast(accounts_per_csm_target as integer) as accounts_per_csm_target,
        cast(
            actual_accounts_per_csm is not null
            and (actual_accounts_per_csm < accounts_per_csm_min or actual_accounts_per_csm > accounts_per_csm_max)
            as boolean
        ) as is_ratio_outside_target,
        cast(csms_needed_at_target as integer) as csms_needed_at_target,
        cast(cost_per_account_at_target as decimal(18, 2)) as cost_per_account_at_target,
        cast(
            case when avg_arr_per_account > 0 then cost_per_account_at_target / avg_arr_per_account end
            as decimal(18, 6)
        ) as cost_share_of_avg_arr_at_target,
        cast(
            avg_arr_per_account > 0
            and (cost_per_account_at_target / avg_arr_per_account < {{ var('cs_cost_share_min') }}
                 or cost_per_account_at_target / avg_arr_per_account > {{ var('cs_cost_share_max') }})
            as boolean
        ) as is_outside_cost_band_at_target,
        cast(annual_cost_to_serve as decimal(18, 2)) as annual_cost_to_serve,
        cast(
            case when arr_reporting > 0 then annual_cost_to_serve / arr_reporting end as decimal(18, 6)
        ) as cost_share_of_arr,
        cast(accounts_outside_cost_band as integer) as accounts_outside_cost_band
    from economics
)

select * from final
