with source as (
    {{ latest_snapshot(source('raw', 'billing__invoices')) }}
),

renamed as (
    select
        trim(invoice_id) as invoice_id,
        trim(account_id) as account_id,
        issued_date,
        due_date,
        cast(amount as decimal(18, 2)) as amount,
        upper(trim(currency)) as currency_code,
        lower(trim(status)) as invoice_status,
        paid_date
    from source
    where issued_date <= {{ as_of_date() }}
),

final as (
    select * from renamed
)

select * from final
