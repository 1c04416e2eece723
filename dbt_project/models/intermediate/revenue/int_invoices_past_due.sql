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

with_end as (
    select
        candidates.*,
        case
            when candidates.invoice_status = 'paid' then coalesce(candidates.paid_date, candidates.suspended_from)
            else (
                select min(later.paid_date)
                from invoices as later
                where later.account_id = candidates.account_id
                  and later.invoice_status = 'paid'
                  and later.issued_date > candidates.issued_date
            )
        end as suspended_until
    from candidates
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
