with source as (
    {{ raw_snapshot('crm__activities') }}
),

renamed as (
    select
        trim(activity_id) as activity_id,
        trim(account_id) as account_id,
        lower(trim(activity_type)) as activity_type,
        occurred_at,
        cast(occurred_at as date) as occurred_date,
        coalesce(is_customer_responded, false) as is_customer_responded
    from source
    where cast(occurred_at as date) <= {{ as_of_date() }}
),

final as (
    select * from renamed
)

select * from final
