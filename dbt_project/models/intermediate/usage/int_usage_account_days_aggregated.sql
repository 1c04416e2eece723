{#- Product usage per account per activity date. Incremental: each night processes
    only the (account, activity date) pairs touched by events that arrived in that
    night's drop (loaded_run_date = as-of date: the day's events plus late events of
    earlier days) and recomputes just those rows from every event known on the
    as-of date. The first run (or a full refresh) processes everything. -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['account_id', 'activity_date'],
        on_schema_change='append_new_columns',
    )
}}

with events as (
    select * from {{ ref('stg_usage__events') }}
),

{% if is_incremental() %}
affected_days as (
    select distinct
        account_id,
        occurred_date
    from events
    where loaded_run_date = {{ as_of_date() }}
),

scoped_events as (
    select events.*
    from events
    inner join affected_days
        on events.account_id = affected_days.account_id
        and events.occurred_date = affected_days.occurred_date
),
{% else %}
scoped_events as (
    select * from events
),
{% endif %}

final as (
    select
        account_id,
        occurred_date as activity_date,
        count(*) as event_count,
        count(distinct user_id) as active_user_count,
        count(distinct feature) as feature_count,
        max(loaded_run_date) as last_loaded_run_date
    from scoped_events
    where occurred_date <= {{ as_of_date() }}
    group by account_id, occurred_date
)

select * from final
