{#- The point-to-point period logic (int_account_mrr_periods) gives, for months, exactly
    the monthly movements of int_account_mrr_monthly: one classification rule. -#}
with periods as (
    select * from {{ ref('int_account_mrr_periods') }}
    where period_type = 'month'
),

monthly as (
    select * from {{ ref('int_account_mrr_monthly') }}
)

select
    monthly.account_id,
    monthly.month_start_date,
    monthly.movement_type as monthly_movement,
    periods.movement_type as period_movement
from monthly
left join periods
    on periods.account_id = monthly.account_id
    and periods.period_start_date = monthly.month_start_date
where periods.account_id is null
   or coalesce(periods.movement_type, '-') <> coalesce(monthly.movement_type, '-')
   or periods.mrr_change_reporting <> monthly.mrr_change_reporting
   or periods.ending_mrr_reporting <> monthly.mrr_reporting
