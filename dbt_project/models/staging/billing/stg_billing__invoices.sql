with source as (
    {{ raw_snapshot('billing__invoices') }}
),

renamed as (
    select
        trim(invoice_id) as invoice_id,
        trim(account_id) as account_id,
        issued_date,
        due_date,
        cast(amount as decimal(18, 2)) as amount,
        upper(trim(currency)) as currency_code,
        {%- if is_backtest_point() %}
        {#- a backtest point: an invoice paid after the as-of date, or written off as
            uncollectible (no date for it), was open on it -#}
        case
            when lower(trim(status)) = 'paid' and paid_date > {{ as_of_date() }} then 'open'
            when lower(trim(status)) = 'uncollectible' then 'open'
            else lower(trim(status))
        end as invoice_status,
        case when paid_date <= {{ as_of_date() }} then paid_date end as paid_date
        {%- else %}
        lower(trim(status)) as invoice_status,
        paid_date
        {%- endif %}
    from source
    where issued_date <= {{ as_of_date() }}
),

final as (
    select * from renamed
)

select * from final
