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

{#- Two readers of the events, not one shared CTE: DuckDB materialises a CTE read more
    than once, which stored every event of the history each night before any filter. -#}
with events as (
    select * from {{ ref('stg_usage__events') }}
),

{% if is_incremental() %}
affected_days as (
    select distinct
        {{ recompute_keys | join(',\n        ') }}
    from {{ ref('stg_usage__events') }}
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
    the memory limit - while a GROUP BY spills to disk. Both in one pass (two grouping
    sets): a second reader of scoped_events would make DuckDB materialise it. Same
    counts (nulls are not counted either way). -#}
usage_groups as (
    select
        account_id,
        occurred_date,
        user_id,
        feature,
        grouping(user_id) as is_feature_group,
        count(*) as event_count,
        max(loaded_run_date) as last_loaded_run_date
    from scoped_events
    where occurred_date <= {{ as_of_date() }}
    group by grouping sets ((account_id, occurred_date, user_id), (account_id, occurred_date, feature))
),

account_days as (
    select
        account_id,
        occurred_date,
        cast(sum(case when is_feature_group = 0 then event_count else 0 end) as {{ dbt.type_bigint() }})
            as event_count,
        count(case when is_feature_group = 0 then user_id end) as active_user_count,
        count(case when is_feature_group = 1 then feature end) as feature_count,
        max(last_loaded_run_date) as last_loaded_run_date
    from usage_groups
    group by account_id, occurred_date
),

final as (
    select
        account_id,
        occurred_date as activity_date,
        event_count,
        active_user_count,
        feature_count,
        last_loaded_run_date
    from account_days
)

select * from final
