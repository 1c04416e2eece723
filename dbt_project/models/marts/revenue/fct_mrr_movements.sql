{#- One row per account and month in which the account's MRR or customer status moved:
    new, expansion, contraction, churn, reactivation (doc block revenue_movement_type). -#}
with account_months as (
    select * from {{ ref('int_account_mrr_monthly') }}
),

with_previous_plan as (
    select
        *,
        lag(plan_name) over (partition by account_id order by month_start_date) as previous_plan_name
    from account_months
),

final as (
    select
        cast(account_id as {{ dbt.type_string() }}) as account_id,
        cast(month_start_date as date) as month_start_date,
        cast(mrr_reference_date as date) as mrr_reference_date,
        cast(movement_type as {{ dbt.type_string() }}) as movement_type,
        cast('{{ var("reporting_currency") }}' as {{ dbt.type_string() }}) as reporting_currency,
        cast(previous_plan_name as {{ dbt.type_string() }}) as previous_plan_name,
        cast(plan_name as {{ dbt.type_string() }}) as plan_name,
        cast(previous_mrr_reporting as decimal(18, 2)) as previous_mrr_reporting,
        cast(mrr_reporting as decimal(18, 2)) as mrr_reporting,
        cast(mrr_change_reporting as decimal(18, 2)) as mrr_change_reporting,
        cast(new_mrr_reporting as decimal(18, 2)) as new_mrr_reporting,
        cast(expansion_mrr_reporting as decimal(18, 2)) as expansion_mrr_reporting,
        cast(contraction_mrr_reporting as decimal(18, 2)) as contraction_mrr_reporting,
        cast(churned_mrr_reporting as decimal(18, 2)) as churned_mrr_reporting,
        cast(reactivation_mrr_reporting as decimal(18, 2)) as reactivation_mrr_reporting,
        cast(
            case
                when movement_type in ('new', 'reactivation') then 1
                when movement_type = 'churn' then -1
                else 0
            end as integer
        ) as logo_change
    from with_previous_plan
    where movement_type is not null
)

select * from final
