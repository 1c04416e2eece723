{#- Product usage per account per activity date. Incremental: each night processes
    only the (account, activity date) pairs touched by events that arrived in that
    night's drop (loaded_run_date = as-of date: the day's events plus late events of
    earlier days) and recomputes just those rows from every event known on the
    as-of date. The first run (or a full refresh) processes the whole history, in
    chunks of var usage_first_build_chunk_days days (bounded memory).
    On Spark (insert_overwrite of activity_date partitions, no row-level delete) the
    unit recomputed is the whole activity date: every account's row of each date the
    night's events touched (macros/incremental/as_of_date_partitions.sql). -#}
{%- set recompute_keys = usage_recompute_keys() %}
{{ config(date_partitioned_incremental('activity_date', unique_key=['account_id', 'activity_date'])) }}

{% if is_incremental() %}
{#- The earliest event time of the night's drop, found at compile time from that one
    partition: a literal bound on occurred_at that both engines push into the Parquet
    scan (row-group statistics; the lake's events are clustered by time), so the night
    reads the few days its events touched, not the whole year of events. The bound
    drops nothing the join keeps: every affected day is on or after it. -#}
{%- set earliest_event = usage_earliest_event_date("loaded_run_date = " ~ as_of_date()) %}
{#- Two readers of the events, not one shared CTE: DuckDB materialises a CTE read more
    than once, which stored every event of the history each night before any filter. -#}
{%- set night_events %}
    with events as (
        select * from {{ ref('stg_usage__events') }}
    ),

    affected_days as (
        select distinct
            {{ recompute_keys | join(',\n            ') }}
        from {{ ref('stg_usage__events') }}
        where loaded_run_date = {{ as_of_date() }}
    )

    select events.*
    from events
    inner join affected_days
        on {% for key in recompute_keys %}events.{{ key }} = affected_days.{{ key }}{% if not loop.last %}
        and {% endif %}{% endfor %}
    {%- if earliest_event %}
    where events.occurred_at >= cast('{{ earliest_event }}' as {{ dbt.type_timestamp() }})
    {%- endif %}
{%- endset %}
{{ usage_account_days_sql(night_events) }}

{% else %}
{#- A first build or full refresh: the history in chunks of occurred_at (macro
    usage_first_build_chunks: bounded memory whatever the history's length), each
    aggregated on its own; an account-day lies in exactly one chunk. -#}
{%- set chunks = usage_first_build_chunks() %}
{%- for chunk_start, chunk_end in chunks %}
select * from (
{%- set chunk_events %}
    select *
    from {{ ref('stg_usage__events') }}
    where occurred_at >= cast('{{ chunk_start }}' as {{ dbt.type_timestamp() }})
      and occurred_at < cast('{{ chunk_end }}' as {{ dbt.type_timestamp() }})
{%- endset %}
{{ usage_account_days_sql(chunk_events) }}
) as chunk_{{ loop.index }}
{% if not loop.last %}union all
{% endif %}
{%- else %}
{{ usage_account_days_sql('select * from ' ~ ref('stg_usage__events')) }}
{%- endfor %}
{% endif %}
