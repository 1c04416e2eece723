{#- The aggregation of int_usage_account_days_aggregated, over the events a query hands
    it (scoped_events_sql: a select of stg_usage__events rows): one row per account and
    activity date. One copy, used by the nightly increment and by each chunk of a first
    build (the model).
    Distinct users and features per account-day are counted after a GROUP BY, not with
    a grouped COUNT(DISTINCT): DuckDB keeps a grouped COUNT(DISTINCT)'s input almost
    whole in memory (duckdb/duckdb#18826), while a GROUP BY spills to disk. Both in one
    pass (two grouping sets): a second reader of scoped_events would make DuckDB
    materialise it. Same counts (nulls are not counted either way). -#}
{% macro usage_account_days_sql(scoped_events_sql) -%}
with scoped_events as (
    {{ scoped_events_sql }}
),

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
{%- endmacro %}


{#- A first build (or full refresh) of the account-day usage, cut into chunks of
    var usage_first_build_chunk_days days of occurred_at, from the first event known on
    the as-of date: [[start, end), ...] as ISO date strings; [] (one statement over the whole
    history) when there are no events, and on Spark.
    Why: aggregating a whole year of events in one statement ran DuckDB 2.0 out of its
    memory_limit at 100K accounts x 365 days (100M events, 87M account-day-user groups,
    17M account-days) although its GROUP BY spills. Measured on that lake (memory_limit
    2GB, a table written as dbt does): this aggregation fails with "could not allocate
    block" at 1.8 GiB with 2 threads and with 1; two plain GROUP BYs (users only) fail
    with 2 threads and pass with 1; the first GROUP BY alone (87M groups) written to a
    table passes, and so do both GROUP BYs under a count(*). So it is the stacked
    aggregates feeding a table that DuckDB cannot keep under the limit (not pinned down
    further; duckdb/duckdb#22474 describes hash-aggregate memory growing with the input).
    The same rows as a UNION ALL of 12 monthly chunks finish at 1.7 GB peak RSS, with less
    CPU (131 s against 211 s for one statement at memory_limit 3GB, where it passes):
    each chunk's aggregates are released when it is done, so a first build's memory is
    bounded by a chunk, not by the history. -#}
{% macro usage_first_build_chunks() -%}
    {{ return(adapter.dispatch('usage_first_build_chunks', 'segment_mart')()) }}
{%- endmacro %}

{#- Spark aggregates out of core on its own (sort-based aggregation spills per task): one
    statement over the whole history, without the extra scans and shuffles of chunks. -#}
{% macro spark__usage_first_build_chunks() -%}
    {{ return([]) }}
{%- endmacro %}

{% macro default__usage_first_build_chunks() -%}
    {%- set chunk_days = var('usage_first_build_chunk_days') | int -%}
    {%- if not execute -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set first_day = usage_earliest_event_date("occurred_date <= " ~ as_of_date()) -%}
    {%- if not first_day -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set start = modules.datetime.date.fromisoformat(first_day | string) -%}
    {%- set last = modules.datetime.date.fromisoformat(as_of_date_string()) -%}
    {%- set chunks = [] -%}
    {%- for k in range(0, ((last - start).days // chunk_days) + 1) -%}
        {%- set lo = start + modules.datetime.timedelta(days=k * chunk_days) -%}
        {%- set hi = lo + modules.datetime.timedelta(days=chunk_days) -%}
        {%- do chunks.append([lo.isoformat(), hi.isoformat()]) -%}
    {%- endfor -%}
    {{ return(chunks) }}
{%- endmacro %}


{#- The earliest occurred_date of the events matching `condition` (SQL over
    stg_usage__events), as an ISO date string, found at compile time; none when no event
    matches (or at parse time). -#}
{% macro usage_earliest_event_date(condition) -%}
    {%- if not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set found = run_query(
        "select cast(min(occurred_date) as " ~ dbt.type_string() ~ ") from " ~ ref('stg_usage__events')
        ~ " where " ~ condition
    ) -%}
    {{ return(found.columns[0].values()[0] if found and found.rows | length > 0 else none) }}
{%- endmacro %}
