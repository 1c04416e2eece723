{#- Daily usage counts known on the as-of date: every row loaded by a drop on or before it. A
    key (account or subscription, day, feature) may be delivered by several drops (a rollup
    restating recent days): all copies are here with their drop; the latest one counts
    (int_usage_daily_counts_resolved). Doc block usage_shapes. -#}
with source as (
    {%- if entity_in_use('usage__daily_counts') %}
    select *
    from {{ source('raw', 'usage__daily_counts') }}
    where _run_date <= cast('{{ snapshot_date() }}' as date)
    {%- if is_backtest_point() %}
      {#- a backtest point: the usage that had happened by the as-of date -#}
      and usage_date <= {{ as_of_date() }}
    {%- endif %}
    {%- else %}
    {#- usage/daily_counts is off (the default; macros/lake/entities_in_use.sql) -#}
    {{ empty_raw_relation('usage__daily_counts') }}
    {%- endif %}
),

renamed as (
    select
        nullif(trim(account_id), '') as account_id,
        nullif(trim(subscription_id), '') as subscription_id,
        usage_date,
        nullif(lower(trim(feature)), '') as feature,
        cast(event_count as {{ dbt.type_bigint() }}) as event_count,
        cast(active_users as {{ dbt.type_bigint() }}) as active_user_count,
        _run_date as loaded_run_date
    from source
),

final as (
    select * from renamed
)

select * from final
