{#- Churn only for accounts that are no longer customers: a churn month has the account
    inactive, and an account that is a customer in the as-of month has, after its last
    churn (if any), a reactivation. -#}
with account_months as (
    select * from {{ ref('fct_mrr_account_monthly') }}
),

last_movements as (
    select
        account_id,
        movement_type,
        is_active_customer,
        row_number() over (
            partition by account_id
            order by case when movement_type in ('new', 'churn', 'reactivation') then month_start_date end desc nulls last
        ) as movement_rank,
        max(month_start_date) over (partition by account_id) as last_month,
        month_start_date
    from account_months
),

active_at_end as (
    select account_id
    from account_months
    where month_start_date = (select max(month_start_date) from account_months)
      and is_active_customer
)

select account_id, month_start_date, 'churn while a customer' as problem
from account_months
where movement_type = 'churn' and is_active_customer

union all

select last_movements.account_id, last_movements.month_start_date, 'active at the end but last logo event is churn'
from last_movements
inner join active_at_end
    on active_at_end.account_id = last_movements.account_id
where last_movements.movement_rank = 1
  and last_movements.movement_type = 'churn'
