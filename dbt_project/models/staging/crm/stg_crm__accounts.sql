with source as (
    {{ latest_snapshot(source('raw', 'crm__accounts')) }}
),

renamed as (
    select
        trim(account_id) as account_id,
        trim(account_name) as account_name,
        lower(trim(industry)) as industry,
        cast(employee_count as {{ dbt.type_int() }}) as employee_count,
        upper(trim(country)) as country_code,
        created_date,
        nullif(trim(csm_owner_id), '') as csm_owner_id,
        coalesce(is_marquee_logo, false) as is_marquee_logo,
        coalesce(is_reference, false) as is_reference,
        coalesce(is_partner, false) as is_partner,
        nullif(trim(parent_account_id), '') as parent_account_id,
        _carried_forward_from is not null as is_carried_forward,
        _carried_forward_from as carried_forward_from_date,
        _run_date as snapshot_date
    from source
),

final as (
    select * from renamed
)

select * from final
