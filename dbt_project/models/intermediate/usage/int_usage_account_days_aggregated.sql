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

{#- The earliest event time of the night's drop, found at compile time from that one
    partition: a literal bound on occurred_at that both engines push into the Parquet
    scan (row-group statistics; the lake's events are clustered by time), so the night
    reads the few days its events touched, not the whole year of events. The bound
    drops nothing the join keeps: every affected day is on or after it. -#}
{%- set earliest_event = none -%}
{%- if execute -%}
    {%- set found = run_query(
        "select cast(min(occurred_date) as " ~ dbt.type_string() ~ ") from " ~ ref('stg_usage__events')
        ~ " where loaded_run_date = " ~ as_of_date()
    ) -%}
    {%- set earliest_event = found.columns[0].values()[0] if found and found.rows | length > 0 else none -%}
{%- endif %}
scoped_events as (
    select events.*
    from events
    inner join affected_days
        on {% for key in recompute_keys %}events.{{ key }} = affected_days.{{ key }}{% if not loop.last %}
        and {% endif %}{% endfor %}
    {%- if earliest_event %}
    where events.occurred_at >= cast('{{ earliest_event }}' as {{ dbt.type_timestamp() }})
    {%- endif %}
),
{% else %}
scoped_events as (
    select * from events
),
{% endif %}

{#- Distinct users and features per account-day are counted after a GROUP BY, not with
    a grouped COUNT(DISTINCT): DuckDB keeps a grouped COUNT(DISTINCT)'s input almost
    whole in memory (duckdb/duckdb#18826) - a first build's year of 100M events ran past
    the memory limit - while a GROUP BY spills to disk. Same counts (nulls are not
    counted either way). -#}
user_days as (
    select
        account_id,
        occurred_date,
        user_id,
        count(*) as event_count,
        max(loaded_run_date) as last_loaded_run_date
    from scoped_events
    where occurred_date <= {{ as_of_date() }}
    group by account_id, occurred_date, user_id
),

feature_days as (
    select
        account_id,
        occurred_date,
        count(*) as feature_count
    from (
        select distinct account_id, occurred_date, feature
        from scoped_events
        where occurred_date <= {{ as_of_date() }}
            and feature is not null
    ) as distinct_features
    group by account_id, occurred_date
),

account_days as (
    select
        account_id,
        occurred_date,
        cast(sum(event_count) as {{ dbt.type_bigint() }}) as event_count,
        count(user_id) as active_user_count,
        max(last_loaded_run_date) as last_loaded_run_date
    from user_days
    group by account_id, occurred_date
),

final as (
    select
        account_days.account_id,
        account_days.occurred_date as activity_date,
        account_days.event_count,
        account_days.active_user_count,
        coalesce(feature_days.feature_count, 0) as feature_count,
        account_days.last_loaded_run_date
    from account_days
    left join feature_days
        on feature_days.account_id = account_days.account_id
        and feature_days.occurred_date = account_days.occurred_date
)

select * from final
