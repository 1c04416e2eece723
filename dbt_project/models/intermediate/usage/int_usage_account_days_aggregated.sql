{#- Product usage per account per activity date. Incremental: each night processes
    only the (account, activity date) pairs touched by events that arrived in that
    night's drop (loaded_run_date = as-of date: the day's events plus late events of
    earlier days) and recomputes just those rows from every event known on the
    as-of date. The first run (or a full refresh) processes everything.
    On Spark (insert_overwrite of activity_date partitions, no row-level delete) the
    unit recomputed is the whole activity date: every account's row of each date the
    night's events touched (macros/incremental/as_of_date_partitions.sql). -#}
{%- set recompute_keys = usage_recompute_keys() %}
{{ config(date_partitioned_incremental('activity_date', unique_key=['account_id', 'activity_date'])) }}

with events as (
    select * from {{ ref('stg_usage__events') }}
),

{% if is_incremental() %}
affected_days as (
    select distinct
        {{ recompute_keys | join(',\n        ') }}
    from events
    where loaded_run_date = {{ as_of_date() }}
),

scoped_events as (
    select events.*
    from events
    inner join affected_days
        on {% for key in recompute_keys %}events.{{ key }} = affected_days.{{ key }}{% if not loop.last %}
        and {% endif %}{% endfor %}
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
