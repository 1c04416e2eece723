{#- One row per account and month, from the account's first billing month (its first
    subscription of any plan) to the month of the as-of date, with its MRR, customer
    status and movement of the month. Definitions: docs/revenue-definitions.md and the
    doc blocks in models/marts/revenue/_revenue__docs.md.
    - The MRR of a month is the MRR active on the month's last day, or on the as-of date
      for the current month (mrr_reference_date); end dates are exclusive.
    - Concurrent subscriptions are summed; the sum is rounded to the cent once, here.
      ARR is the sum of the subscriptions' exact ARR (interval amount x 12 / months in
      the interval), never 12 x the rounded MRR: two annual 20,000 plans are 40,000.00
      ARR, not 12 x 3,333.33.
    - Trials (unless var revenue_count_trials_as_customers), $0 accounts (unless var
      revenue_count_zero_mrr_as_customers) and accounts suspended by a past-due invoice
      (int_invoices_past_due) are not customers that month and carry no MRR.
    - A gap of at most var revenue_reactivation_window_months inactive months between two
      customer months is bridged: the account stays a customer (with 0 MRR), so it never
      churned. Longer gaps are churn then reactivation.
    Closed months are kept, not rebuilt (config mrr_monthly_incremental): a month before
    the as-of month reads only the subscriptions and suspensions active on its last day,
    which a later snapshot changes only by restating them; what it reads of other months
    (bridging, the month before, first active month, ever active before) moves only
    within var revenue_reactivation_window_months of a month that changes, or for an
    account not yet a customer. Each row records the fingerprint of its account's inputs
    before the as-of month (macro mrr_monthly_inputs_fingerprints); a night deletes
    (pre-hook mrr_monthly_invalidate) every row from the window before the as-of month on,
    and every row of an account whose fingerprint changed (billing restated, an FX or var
    change), is gone, or has no customer month kept; then computes, per account, the
    months after its last kept row, placed after the kept rows the windows need (the
    month before, the first customer month, the last paying month). A first build (or a
    full refresh) computes every month; the result is the same (tests/e2e/test_soak.py
    compares with a full refresh after a restated closed month). The night's data tests
    check the rows it computed (meta partition_date_column: computed_as_of_date). -#}
{{ config(mrr_monthly_incremental()) }}
with subscriptions as (
    select * from {{ ref('int_subscriptions_normalised') }}
),

past_due_invoices as (
    select * from {{ ref('int_invoices_past_due') }}
),

months as (
    {{ month_spine('(select min(start_date) from subscriptions)', as_of_date()) }}
),

month_dates as (
    select
        month_start_date,
        cast({{ dbt.dateadd('day', -1, dbt.dateadd('month', 1, 'month_start_date')) }} as date) as month_end_date
    from months
),

reference_dates as (
    select
        month_start_date,
        month_end_date,
        case
            when month_end_date > {{ as_of_date() }} then {{ as_of_date() }}
            else month_end_date
        end as mrr_reference_date
    from month_dates
),

account_first_months as (
    select
        account_id,
        cast({{ dbt.date_trunc('month', 'min(start_date)') }} as date) as first_billing_month,
        min(start_date) as first_subscription_date
    from subscriptions
    group by account_id
),

{%- if is_incremental() %}
kept_accounts as (
    {#- accounts with kept rows (the pre-hook left only closed months nothing changed) -#}
    select account_id, max(month_start_date) as last_kept_month
    from {{ this }}
    group by account_id
),

kept_context as (
    {#- of each account's kept rows, those the windows of the months computed read: the
        last one (the month before), the first customer month and the last paying month -#}
    select *
    from (
        select
            *,
            max(month_start_date) over (partition by account_id) as last_kept_month,
            min(case when is_active_customer then month_start_date end) over (partition by account_id)
                as first_customer_month,
            max(case when is_active_customer and not is_bridged_gap then month_start_date end)
                over (partition by account_id) as last_paying_month
        from {{ this }}
    ) as kept
    where month_start_date in (last_kept_month, first_customer_month, last_paying_month)
),
{%- endif %}

account_months as (
    {#- the account-months to compute: every one on a first build; on a night, those after
        the account's last kept row -#}
    select
        account_first_months.account_id,
        account_first_months.first_subscription_date,
        reference_dates.month_start_date,
        reference_dates.month_end_date,
        reference_dates.mrr_reference_date
    from account_first_months
    inner join reference_dates
        on reference_dates.month_start_date >= account_first_months.first_billing_month
    {%- if is_incremental() %}
    left join kept_accounts
        on kept_accounts.account_id = account_first_months.account_id
    where kept_accounts.last_kept_month is null
       or reference_dates.month_start_date > kept_accounts.last_kept_month
    {%- endif %}
),

subscriptions_on_reference_date as (
    select
        account_months.account_id,
        account_months.month_start_date,
        subscriptions.subscription_id,
        subscriptions.plan_name,
        subscriptions.product_line,
        subscriptions.seats,
        subscriptions.start_date,
        subscriptions.is_trial,
        subscriptions.mrr_reporting,
        subscriptions.arr_reporting,
        {% if var('revenue_count_trials_as_customers') -%}
        true as is_counted
        {%- else -%}
        not subscriptions.is_trial as is_counted
        {%- endif %}
    from account_months
    inner join subscriptions
        on subscriptions.account_id = account_months.account_id
        and subscriptions.start_date <= account_months.mrr_reference_date
        and (subscriptions.end_date is null or subscriptions.end_date > account_months.mrr_reference_date)
),

ranked_subscriptions as (
    select
        *,
        row_number() over (
            partition by account_id, month_start_date
            order by is_counted desc, mrr_reporting desc, start_date desc, subscription_id
        ) as plan_rank
    from subscriptions_on_reference_date
),

account_month_subscriptions as (
    select
        account_id,
        month_start_date,
        sum(case when is_counted then 1 else 0 end) as active_subscription_count,
        count(distinct case when is_counted then product_line end) as product_line_count,
        sum(case when is_counted then seats else 0 end) as seats,
        max(case when is_trial then 1 else 0 end) = 1 as is_on_trial,
        max(case when plan_rank = 1 then plan_name end) as plan_name,
        cast(sum(case when is_counted then mrr_reporting else 0 end) as decimal(18, 2)) as subscribed_mrr_reporting,
        cast(sum(case when is_counted then arr_reporting else 0 end) as decimal(18, 2)) as subscribed_arr_reporting
    from ranked_subscriptions
    group by account_id, month_start_date
),

suspended_account_months as (
    select distinct
        account_months.account_id,
        account_months.month_start_date
    from account_months
    inner join past_due_invoices
        on past_due_invoices.account_id = account_months.account_id
        and past_due_invoices.suspended_from <= account_months.mrr_reference_date
        and (
            past_due_invoices.suspended_until is null
            or past_due_invoices.suspended_until > account_months.mrr_reference_date
        )
),

states as (
    select
        account_months.account_id,
        account_months.first_subscription_date,
        account_months.month_start_date,
        account_months.month_end_date,
        account_months.mrr_reference_date,
        account_month_subscriptions.plan_name,
        coalesce(account_month_subscriptions.active_subscription_count, 0) as active_subscription_count,
        coalesce(account_month_subscriptions.product_line_count, 0) as product_line_count,
        coalesce(account_month_subscriptions.seats, 0) as seats,
        coalesce(account_month_subscriptions.is_on_trial, false) as is_on_trial,
        suspended_account_months.account_id is not null
        and coalesce(account_month_subscriptions.active_subscription_count, 0) > 0 as is_past_due_suspended,
        coalesce(account_month_subscriptions.subscribed_mrr_reporting, 0) as subscribed_mrr_reporting,
        coalesce(account_month_subscriptions.subscribed_arr_reporting, 0) as subscribed_arr_reporting
    from account_months
    left join account_month_subscriptions
        on account_month_subscriptions.account_id = account_months.account_id
        and account_month_subscriptions.month_start_date = account_months.month_start_date
    left join suspended_account_months
        on suspended_account_months.account_id = account_months.account_id
        and suspended_account_months.month_start_date = account_months.month_start_date
),

computed_customers as (
    select
        *,
        active_subscription_count > 0
        and not is_past_due_suspended
        {% if not var('revenue_count_zero_mrr_as_customers') -%}
        and subscribed_mrr_reporting > 0
        {%- endif %} as is_paying_state,
        cast(null as boolean) as kept_is_active_customer,
        false as is_kept_context
    from states
),

customers as (
    select * from computed_customers
    {%- if is_incremental() %}

    {#- kept rows the windows read (not selected again): a kept month's MRR is its
        subscribed MRR when it was paying, else 0 #}
    union all
    select
        account_id,
        first_subscription_date,
        month_start_date,
        month_end_date,
        mrr_reference_date,
        plan_name,
        active_subscription_count,
        product_line_count,
        seats,
        is_on_trial,
        is_past_due_suspended,
        mrr_reporting as subscribed_mrr_reporting,
        arr_reporting as subscribed_arr_reporting,
        is_active_customer and not is_bridged_gap as is_paying_state,
        is_active_customer as kept_is_active_customer,
        true as is_kept_context
    from kept_context
    {%- endif %}
),

gaps as (
    select
        *,
        max(case when is_paying_state then month_start_date end) over (
            partition by account_id order by month_start_date
            rows between unbounded preceding and 1 preceding
        ) as previous_customer_month,
        min(case when is_paying_state then month_start_date end) over (
            partition by account_id order by month_start_date
            rows between 1 following and unbounded following
        ) as next_customer_month
    from customers
),

bridged as (
    select
        *,
        not is_paying_state
        and previous_customer_month is not null
        and next_customer_month is not null
        and ({{ dbt.datediff('previous_customer_month', 'next_customer_month', 'month') }}) - 1
            <= {{ var('revenue_reactivation_window_months') | int }} as is_bridged_gap
    from gaps
),

statuses as (
    select
        *,
        coalesce(kept_is_active_customer, is_paying_state or is_bridged_gap) as is_active_customer,
        case
            when is_paying_state then subscribed_mrr_reporting
            else cast(0 as decimal(18, 2))
        end as mrr_reporting,
        case
            when is_paying_state then subscribed_arr_reporting
            else cast(0 as decimal(18, 2))
        end as arr_reporting
    from bridged
),

lagged as (
    select
        *,
        coalesce(lag(is_active_customer) over account_months_in_order, false) as was_active_customer,
        coalesce(lag(mrr_reporting) over account_months_in_order, cast(0 as decimal(18, 2)))
            as previous_mrr_reporting,
        coalesce(
            max(case when is_active_customer then 1 else 0 end) over (
                partition by account_id order by month_start_date
                rows between unbounded preceding and 1 preceding
            ),
            0
        ) = 1 as was_ever_active_before,
        min(case when is_active_customer then month_start_date end) over (partition by account_id)
            as first_active_month
    from statuses
    window account_months_in_order as (partition by account_id order by month_start_date)
),

classified as (
    select
        *,
        {{ revenue_movement_type(
            'was_active_customer', 'is_active_customer', 'was_ever_active_before',
            'previous_mrr_reporting', 'mrr_reporting'
        ) }} as movement_type
    from lagged
),

final as (
    select
        classified.account_id,
        month_start_date,
        month_end_date,
        mrr_reference_date,
        first_subscription_date,
        plan_name,
        active_subscription_count,
        product_line_count,
        seats,
        is_on_trial,
        is_past_due_suspended,
        is_bridged_gap,
        is_active_customer,
        was_active_customer,
        was_ever_active_before,
        was_ever_active_before or is_active_customer as is_ever_active_to_date,
        first_active_month,
        case
            when first_active_month <= month_start_date
                then {{ dbt.datediff('first_active_month', 'month_start_date', 'month') }}
        end as months_since_first_active,
        subscribed_mrr_reporting,
        previous_mrr_reporting,
        mrr_reporting,
        arr_reporting,
        movement_type,
        {{ revenue_movement_amounts('movement_type', 'previous_mrr_reporting', 'mrr_reporting') }},
        inputs_fingerprints.inputs_fingerprint,
        cast('{{ as_of_month_string() }}' as date) as inputs_boundary_month,
        {{ as_of_date() }} as computed_as_of_date
    from classified
    left join (
        {{ mrr_monthly_inputs_fingerprints(
            '(select * from subscriptions)', '(select * from past_due_invoices)',
            "cast('" ~ as_of_month_string() ~ "' as date)") }}
    ) as inputs_fingerprints
        on inputs_fingerprints.account_id = classified.account_id
    where not classified.is_kept_context
)

select * from final
