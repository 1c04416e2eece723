{#- The conformed account dimension as of the run date: one row per CRM account with
    its attributes, commercial summary, status (live / churned / prospect: doc block
    account_status) and the conformed bands (value, company size, industry group,
    region, tenure). See doc block account_dimensions. -#}
with accounts as (
    select * from {{ ref('stg_crm__accounts') }}
),

subscription_summary as (
    select * from {{ ref('int_accounts_subscriptions_summarised') }}
),

subscriptions as (
    select * from {{ ref('int_subscriptions_normalised') }}
),

industry_groups as (
    select * from {{ ref('industry_groups') }}
),

country_regions as (
    select * from {{ ref('country_regions') }}
),

product_lines_offered as (
    select count(distinct product_line) as product_lines_offered
    from subscriptions
    where start_date <= {{ as_of_date() }}
),

child_accounts as (
    select
        parent_account_id as account_id,
        count(*) as child_account_count
    from accounts
    where parent_account_id is not null
    group by parent_account_id
),

joined as (
    select
        accounts.account_id,
        {{ as_of_date() }} as as_of_date,
        accounts.account_name,
        accounts.industry,
        coalesce(industry_groups.industry_group, '{{ var("unmapped_industry_group") }}') as industry_group,
        accounts.employee_count,
        accounts.country_code,
        coalesce(country_regions.region, '{{ var("unmapped_region") }}') as region,
        accounts.created_date,
        accounts.csm_owner_id,
        accounts.parent_account_id,
        coalesce(child_accounts.child_account_count, 0) as child_account_count,
        accounts.is_marquee_logo,
        accounts.is_reference,
        accounts.is_partner,
        accounts.is_carried_forward,
        accounts.carried_forward_from_date,
        coalesce(subscription_summary.customer_since_date, accounts.created_date) as customer_since_date,
        coalesce(subscription_summary.has_active_subscription, false) as has_active_subscription,
        case
            when subscription_summary.has_active_subscription then 'live'
            when subscription_summary.account_id is not null then 'churned'
            else 'prospect'
        end as account_status,
        coalesce(subscription_summary.arr_reporting, 0) as arr_reporting,
        coalesce(subscription_summary.mrr_reporting, 0) as mrr_reporting,
        coalesce(subscription_summary.licensed_seats, 0) as licensed_seats,
        coalesce(subscription_summary.product_lines_owned, 0) as product_lines_owned,
        subscription_summary.product_lines,
        product_lines_offered.product_lines_offered,
        subscription_summary.plan_name,
        subscription_summary.primary_product_line,
        subscription_summary.next_renewal_date
    from accounts
    left join subscription_summary
        on accounts.account_id = subscription_summary.account_id
    left join industry_groups
        on accounts.industry = lower(trim(industry_groups.industry))
    left join country_regions
        on accounts.country_code = upper(trim(country_regions.country_code))
    left join child_accounts
        on accounts.account_id = child_accounts.account_id
    cross join product_lines_offered
    where accounts.created_date <= {{ as_of_date() }}
),

final as (
    select
        *,
        case
            when arr_reporting >= {{ var('value_band_enterprise_min_arr') }} then 'Enterprise'
            when arr_reporting >= {{ var('value_band_mid_market_min_arr') }} then 'Mid-market'
            else 'SMB'
        end as value_band,
        case
            when employee_count is null then 'unknown'
            when employee_count >= {{ var('company_size_enterprise_min_employees') }} then 'Enterprise'
            when employee_count >= {{ var('company_size_mid_market_min_employees') }} then 'Mid-market'
            else 'SMB'
        end as company_size_band,
        {{ dbt.datediff('customer_since_date', 'as_of_date', 'day') }} as tenure_days,
        case
            when employee_count > 0 then cast(1 as double) * licensed_seats / employee_count
        end as licence_share_of_employees,
        case
            when next_renewal_date is not null
                then {{ dbt.datediff('as_of_date', 'next_renewal_date', 'day') }}
        end as days_to_renewal
    from joined
)

select * from final
