with source as (
    {{ latest_snapshot(source('raw', 'crm__support_cases')) }}
),

renamed as (
    select
        trim(case_id) as case_id,
        trim(account_id) as account_id,
        opened_at,
        cast(opened_at as date) as opened_date,
        closed_at,
        cast(closed_at as date) as closed_date,
        lower(trim(priority)) as priority,
        lower(trim(status)) as status,
        cast(csat as {{ dbt.type_int() }}) as csat_score
    from source
    where cast(opened_at as date) <= {{ as_of_date() }}
),

final as (
    select * from renamed
)

select * from final
