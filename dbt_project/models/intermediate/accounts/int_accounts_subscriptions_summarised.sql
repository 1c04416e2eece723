{#- One row per account that has had a subscription up to the as-of date: ARR of the
    subscriptions active on the as-of date, licensed seats, primary plan, product
    lines owned and the next renewal date. See doc block account_subscription_summary. -#}
with subscriptions as (
    select * from {{ ref('int_subscriptions_normalised') }}
),

active_subscriptions as (
    select
        subscription_id,
        account_id,
        plan_name,
        product_line,
        start_date,
        end_date,
        billing_interval_months,
        seats,
        mrr_reporting,
        arr_reporting,
        cast(
            floor(
                {#- parenthesised: a macro's expansion may be a sum (dbt-spark's was) -#}
                ({{ dbt.datediff('start_date', as_of_date(), 'month') }})
                / billing_interval_months
            ) as {{ dbt.type_int() }}
        ) as full_terms_elapsed
    from subscriptions
    where start_date <= {{ as_of_date() }}
      and (end_date is null or end_date > {{ as_of_date() }})
),

renewals as (
    {#- A dated period renews on its (exclusive) end date; an open-ended one on the
        next anniversary of its start by billing interval. -#}
    select
        *,
        cast({{ dbt.dateadd('month', 'full_terms_elapsed * billing_interval_months', 'start_date') }} as date)
            as term_anniversary_date,
        cast({{ dbt.dateadd('month', '(full_terms_elapsed + 1) * billing_interval_months', 'start_date') }} as date)
            as next_term_anniversary_date
    from active_subscriptions
),

renewal_dates as (
    select
        *,
        case
            when end_date is not null then end_date
            when term_anniversary_date > {{ as_of_date() }} then term_anniversary_date
            else next_term_anniversary_date
        end as renewal_date,
        row_number() over (
            partition by account_id
            order by mrr_reporting desc, start_date desc, subscription_id
        ) as mrr_rank
    from renewals
),

active_summary as (
    select
        account_id,
        count(*) as active_subscription_count,
        cast(sum(arr_reporting) as decimal(18, 2)) as arr_reporting,
        cast(sum(mrr_reporting) as decimal(18, 2)) as mrr_reporting,
        max(seats) as licensed_seats,
        count(distinct product_line) as product_lines_owned,
        min(renewal_date) as next_renewal_date
    from renewal_dates
    group by account_id
),

primary_plans as (
    select
        account_id,
        plan_name,
        product_line as primary_product_line
    from renewal_dates
    where mrr_rank = 1
),

owned_product_lines as (
    select distinct
        account_id,
        product_line
    from active_subscriptions
),

product_line_lists as (
    select
        account_id,
        {{ dbt.listagg('product_line', "', '", 'order by product_line') }} as product_lines
    from owned_product_lines
    group by account_id
),

customer_since as (
    select
        account_id,
        min(start_date) as customer_since_date,
        max(case when mrr_reporting > 0 then 1 else 0 end) as has_paid_ever
    from subscriptions
    where start_date <= {{ as_of_date() }}
    group by account_id
),

final as (
    select
        customer_since.account_id,
        customer_since.customer_since_date,
        coalesce(active_summary.active_subscription_count, 0) > 0 as has_active_subscription,
        coalesce(active_summary.active_subscription_count, 0) as active_subscription_count,
        coalesce(active_summary.arr_reporting, 0) as arr_reporting,
        coalesce(active_summary.mrr_reporting, 0) as mrr_reporting,
        coalesce(active_summary.licensed_seats, 0) as licensed_seats,
        coalesce(active_summary.product_lines_owned, 0) as product_lines_owned,
        product_line_lists.product_lines,
        primary_plans.plan_name,
        primary_plans.primary_product_line,
        active_summary.next_renewal_date
    from customer_since
    left join active_summary
        on customer_since.account_id = active_summary.account_id
    left join primary_plans
        on customer_since.account_id = primary_plans.account_id
    left join product_line_lists
        on customer_since.account_id = product_line_lists.account_id
)

select * from final
