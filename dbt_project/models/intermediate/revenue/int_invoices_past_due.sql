{#- Invoices that suspend their account's MRR, one row per invoice, with the suspension
    range [suspended_from, suspended_until). Policy (docs/revenue-definitions.md):
    an open invoice keeps MRR for var revenue_past_due_grace_days after its due date, an
    uncollectible one for var revenue_uncollectible_grace_days; the suspension ends when
    the invoice is paid (a late payment restores the months it covered on the next run)
    or, for an invoice still open or written off, when a later invoice of the account is
    paid. Void invoices never suspend. A null grace var switches that rule off. -#}
{%- set past_due_grace = var('revenue_past_due_grace_days') -%}
{%- set uncollectible_grace = var('revenue_uncollectible_grace_days') -%}
with invoices as (
    select * from {{ ref('stg_billing__invoices') }}
),

candidates as (
    select
        invoice_id,
        account_id,
        issued_date,
        due_date,
        paid_date,
        invoice_status,
        {% if uncollectible_grace is none and past_due_grace is none -%}
        cast(null as date) as suspended_from
        {%- else -%}
        case
            {% if uncollectible_grace is not none -%}
            when invoice_status = 'uncollectible'
                then cast({{ dbt.dateadd('day', uncollectible_grace | int, 'due_date') }} as date)
            {% endif -%}
            {% if past_due_grace is not none -%}
            when invoice_status in ('open', 'paid')
                then cast({{ dbt.dateadd('day', past_due_grace | int, 'due_date') }} as date)
            {% endif -%}
        end as suspended_from
        {%- endif %}
    from invoices
    where invoice_status in ('open', 'paid', 'uncollectible')
),

{#- The first payment of a later invoice of the same account, for each (account, issue
    date) an unpaid invoice has: an equi-join on the account. Not a correlated subquery:
    Spark decorrelates `later.issued_date > candidates.issued_date` into a join of every
    paid invoice with every distinct issue date (a nested loop without the account key, in
    one task), which did not finish in 20 minutes at 10,000 accounts (docs/spark.md). -#}
later_payments as (
    select
        unpaid.account_id,
        unpaid.issued_date,
        min(later.paid_date) as first_later_paid_date
    from (
        select distinct account_id, issued_date
        from candidates
        where invoice_status <> 'paid'
    ) as unpaid
    inner join invoices as later
        on later.account_id = unpaid.account_id
        and later.invoice_status = 'paid'
        and later.issued_date > unpaid.issued_date
    group by unpaid.account_id, unpaid.issued_date
),

with_end as (
    select
        candidates.*,
        case
            when candidates.invoice_status = 'paid' then coalesce(candidates.paid_date, candidates.suspended_from)
            else later_payments.first_later_paid_date
        end as suspended_until
    from candidates
    left join later_payments
        on candidates.account_id = later_payments.account_id
        and candidates.issued_date = later_payments.issued_date
    where candidates.suspended_from is not null
),

final as (
    select
        invoice_id,
        account_id,
        invoice_status,
        due_date,
        paid_date,
        suspended_from,
        suspended_until
    from with_end
    where suspended_until is null
       or suspended_until > suspended_from
)

select * from final
