{#- Events known on the as-of date: loaded by a drop on or before it (late events
    count from the night they arrive), so re-running a past date sees what it saw. -#}
with source as (
    {%- if entity_in_use('usage__events') %}
    select *
    from {{ source('raw', 'usage__events') }}
    where _run_date <= cast('{{ snapshot_date() }}' as date)
    {%- if is_backtest_point() %}
      {#- a backtest point: the events that had happened by the as-of date -#}
      and cast(occurred_at as date) <= {{ as_of_date() }}
    {%- endif %}
    {%- else %}
    {#- usage/events is off (macros/lake/entities_in_use.sql) -#}
    {{ empty_raw_relation('usage__events') }}
    {%- endif %}
),

renamed as (
    select
        trim(event_id) as event_id,
        trim(account_id) as account_id,
        trim(user_id) as user_id,
        lower(trim(event_name)) as event_name,
        nullif(lower(trim(feature)), '') as feature,
        occurred_at,
        cast(occurred_at as date) as occurred_date,
        _run_date as loaded_run_date
    from source
),

final as (
    select * from renamed
)

select * from final
