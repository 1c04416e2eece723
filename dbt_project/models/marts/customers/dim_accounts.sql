{#- Published: one row per account as of the run date with its conformed dimensions,
    status (live / churned / prospect), current behaviour segments, health, assigned
    tier and cost to serve; tier, health and cost to serve only for live accounts. -#}
with accounts as (
    select * from {{ ref('int_accounts_enriched') }}
),

segments as (
    select * from {{ ref('int_account_segments_classified') }}
    where as_of_date = {{ as_of_date() }}
),

health as (
    select * from {{ ref('int_account_health_scored') }}
    where as_of_date = {{ as_of_date() }}
),

tiers as (
    select * from {{ ref('int_account_tiers_assigned') }}
    where as_of_date = {{ as_of_date() }}
),

cost_to_serve as (
    select * from {{ ref('int_accounts_cost_to_serve') }}
),

final as (
    select
        cast(accounts.account_id as {{ dbt.type_string() }}) as account_id,
        cast(accounts.as_of_date as date) as as_of_date,
        cast(accounts.account_name as {{ dbt.type_string() }}) as account_name,
        cast(accounts.industry as {{ dbt.type_string() }}) as industry,
        cast(accounts.industry_group as {{ dbt.type_string() }}) as industry_group,
        cast(accounts.employee_count as integer) as employee_count,
        cast(accounts.company_size_band as {{ dbt.type_string() }}) as company_size_band,
        cast(accounts.country_code as {{ dbt.type_string() }}) as country_code,
        cast(accounts.region as {{ dbt.type_string() }}) as region,
        cast(accounts.created_date as date) as created_date,
        cast(accounts.customer_since_date as date) as customer_since_date,
        cast(accounts.tenure_days as integer) as tenure_days,
        cast(accounts.csm_owner_id as {{ dbt.type_string() }}) as csm_owner_id,
        cast(accounts.parent_account_id as {{ dbt.type_string() }}) as parent_account_id,
        cast(accounts.child_account_count as integer) as child_account_count,
        cast(accounts.is_marquee_logo as boolean) as is_marquee_logo,
        cast(accounts.is_reference as boolean) as is_reference,
        cast(accounts.is_partner as boolean) as is_partner,
        cast(accounts.is_carried_forward as boolean) as is_carried_forward,
        cast(accounts.carried_forward_from_date as date) as carried_forward_from_date,
        cast(accounts.has_active_subscription as boolean) as has_active_subscription,
        cast(accounts.account_status as {{ dbt.type_string() }}) as account_status,
        cast(accounts.arr_reporting as decimal(18, 2)) as arr_reporting,
        cast(accounts.mrr_reporting as decimal(18, 2)) as mrr_reporting,
        cast(accounts.value_band as {{ dbt.type_string() }}) as value_band,
        cast(accounts.plan_name as {{ dbt.type_string() }}) as plan_name,
        cast(accounts.primary_product_line as {{ dbt.type_string() }}) as primary_product_line,
        cast(accounts.product_lines as {{ dbt.type_string() }}) as product_lines,
        cast(accounts.product_lines_owned as integer) as product_lines_owned,
        cast(accounts.licensed_seats as integer) as licensed_seats,
        cast(accounts.next_renewal_date as date) as next_renewal_date,
        cast(accounts.days_to_renewal as integer) as days_to_renewal,
        cast(segments.usage_segment as {{ dbt.type_string() }}) as usage_segment,
        cast(segments.engagement_segment as {{ dbt.type_string() }}) as engagement_segment,
        cast(segments.adoption_stage as {{ dbt.type_string() }}) as adoption_stage,
        cast(segments.support_segment as {{ dbt.type_string() }}) as support_segment,
        cast(segments.advocacy_segment as {{ dbt.type_string() }}) as advocacy_segment,
        cast(segments.growth_potential as {{ dbt.type_string() }}) as growth_potential,
        cast(segments.complexity_segment as {{ dbt.type_string() }}) as complexity_segment,
        cast(health.health_score as decimal(5, 1)) as health_score,
        cast(health.health_status as {{ dbt.type_string() }}) as health_status,
        cast(health.weakest_component as {{ dbt.type_string() }}) as weakest_health_component,
        cast(tiers.assigned_tier as {{ dbt.type_string() }}) as assigned_tier,
        cast(tiers.tier_number as integer) as tier_number,
        cast(tiers.computed_tier as {{ dbt.type_string() }}) as computed_tier,
        cast(tiers.computed_tier_number as integer) as computed_tier_number,
        cast(tiers.tier_score as decimal(6, 2)) as tier_score,
        cast(tiers.tier_reason as {{ dbt.type_string() }}) as tier_reason,
        cast(tiers.is_downgrade_pending as boolean) as is_downgrade_pending,
        cast(tiers.pending_downgrade_tier as {{ dbt.type_string() }}) as pending_downgrade_tier,
        cast(tiers.pending_downgrade_tier_number as integer) as pending_downgrade_tier_number,
        cast(tiers.pending_downgrade_date as date) as pending_downgrade_date,
        cast(tiers.assigned_since_date as date) as tier_assigned_since_date,
        cast(tiers.last_tier_review_date as date) as last_tier_review_date,
        cast(cost_to_serve.annual_cost_to_serve as decimal(18, 2)) as annual_cost_to_serve,
        cast(cost_to_serve.cost_share_of_arr as decimal(18, 6)) as cost_share_of_arr,
        cast(cost_to_serve.cost_band_status as {{ dbt.type_string() }}) as cost_band_status
    from accounts
    left join segments
        on accounts.account_id = segments.account_id
    left join health
        on accounts.account_id = health.account_id
    left join tiers
        on accounts.account_id = tiers.account_id
    left join cost_to_serve
        on accounts.account_id = cost_to_serve.account_id
)

select * from final
