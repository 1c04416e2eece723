{#- MRR per account and month, from the account's first billing month to the as-of
    month. Definitions: doc blocks revenue_mrr_month, revenue_customer,
    revenue_movement_type. -#}
with account_months as (
    select * from {{ ref('int_account_mrr_monthly') }}
),

final as (
    select
        cast(account_id as {{ dbt.type_string() }}) as account_id,
        cast(month_start_date as date) as month_start_date,
        cast(month_end_date as date) as month_end_date,
        cast(mrr_reference_date as date) as mrr_reference_date,
        cast('{{ var("reporting_currency") }}' as {{ dbt.type_string() }}) as reporting_currency,
        cast(plan_name as {{ dbt.type_string() }}) as plan_name,
        cast(active_subscription_count as integer) as active_subscription_count,
        cast(product_line_count as integer) as product_line_count,
        cast(seats as bigint) as seats,
        cast(is_on_trial as boolean) as is_on_trial,
        cast(is_past_due_suspended as boolean) as is_past_due_suspended,
        cast(is_bridged_gap as boolean) as is_bridged_gap,
        cast(is_active_customer as boolean) as is_active_customer,
        cast(first_active_month as date) as first_active_month,
        cast(months_since_first_active as integer) as months_since_first_active,
        cast(subscribed_mrr_reporting as decimal(18, 2)) as subscribed_mrr_reporting,
        cast(previous_mrr_reporting as decimal(18, 2)) as previous_mrr_reporting,
        cast(mrr_reporting as decimal(18, 2)) as mrr_reporting,
        cast(arr_reporting as decimal(18, 2)) as arr_reporting,
        cast(movement_type as {{ dbt.type_string() }}) as movement_type,
        cast(mrr_change_reporting as decimal(18, 2)) as mrr_change_reporting
    from account_months
)

select * from final
