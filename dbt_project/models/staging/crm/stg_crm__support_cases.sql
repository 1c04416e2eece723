with source as (
    {{ raw_snapshot('crm__support_cases') }}
),

renamed as (
    select
        trim(case_id) as case_id,
        trim(account_id) as account_id,
        opened_at,
        cast(opened_at as date) as opened_date,
        {%- if is_backtest_point() %}
        case when cast(closed_at as date) <= {{ as_of_date() }} then closed_at end as closed_at,
        case when cast(closed_at as date) <= {{ as_of_date() }} then cast(closed_at as date) end as closed_date,
        {%- else %}
        closed_at,
        cast(closed_at as date) as closed_date,
        {%- endif %}
        lower(trim(priority)) as priority,
        {%- if is_backtest_point() %}
        {#- a backtest point: a case closed after the as-of date was still open on it -#}
        case
            when closed_at is not null and cast(closed_at as date) > {{ as_of_date() }} then 'open'
            else lower(trim(status))
        end as status,
        {%- else %}
        lower(trim(status)) as status,
        {%- endif %}
        cast(csat as {{ dbt.type_int() }}) as csat_score
    from source
    where cast(opened_at as date) <= {{ as_of_date() }}
),

final as (
    select * from renamed
)

select * from final
