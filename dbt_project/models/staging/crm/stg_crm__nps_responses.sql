with source as (
    {{ raw_snapshot('crm__nps_responses') }}
),

renamed as (
    select
        trim(response_id) as response_id,
        trim(account_id) as account_id,
        responded_at,
        cast(responded_at as date) as responded_date,
        cast(score as {{ dbt.type_int() }}) as nps_score
    from source
    where cast(responded_at as date) <= {{ as_of_date() }}
),

final as (
    select * from renamed
)

select * from final
