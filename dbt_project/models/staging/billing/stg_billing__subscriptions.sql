with source as (
    {{ latest_snapshot(source('raw', 'billing__subscriptions')) }}
),

renamed as (
    select
        trim(subscription_id) as subscription_id,
        trim(account_id) as account_id,
        lower(trim(plan)) as plan_name,
        lower(trim(product_line)) as product_line,
        start_date,
        end_date,
        lower(trim(billing_interval)) as billing_interval,
        case lower(trim(billing_interval))
            when 'month' then 1
            when 'quarter' then 3
            when 'year' then 12
        end as billing_interval_months,
        cast(amount as decimal(18, 2)) as amount,
        upper(trim(currency)) as currency_code,
        cast(seats as {{ dbt.type_int() }}) as seats,
        coalesce(is_per_seat, false) as is_per_seat
    from source
    where start_date <= {{ as_of_date() }}
),

final as (
    select * from renamed
)

select * from final
