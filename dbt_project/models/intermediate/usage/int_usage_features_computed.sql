{#- Rolling usage features per account as of the run date, from the daily usage rows
    (counts, DAU) and the events of the window (distinct users and features, which do
    not add up across days). Usage may come as events, as daily counts (usage/daily_counts,
    int_usage_daily_counts_resolved) or both: the daily totals add up, distinct features are
    the union, active users the larger of the two. Only accounts with any usage up to the
    as-of date have a row. See doc blocks usage_features and usage_shapes. -#}
{% set window_days = var('usage_window_days') %}

with stored_usage_days as (
    select * from {{ ref('int_usage_account_days_aggregated') }}
),

stored_count_rows as (
    select * from {{ ref('int_usage_daily_counts_resolved') }}
),

{#- The events are read by three separate import CTEs, each with its own date bound, not
    one shared CTE: DuckDB materialises a CTE that is read more than once, which read and
    stored every event of the history each night before any filter (measured: all 122 row
    groups of a year at 10K accounts, 38 s); read once each, the bounds are pushed into
    the Parquet scan. -#}
backfilled_day_events as (
    select * from {{ ref('stg_usage__events') }}
),

window_events_known as (
    select * from {{ ref('stg_usage__events') }}
    {# the bound on the raw column, as a constant: pushed into the Parquet scan (row-group
       statistics; the lake's events are clustered by time) #}
    where occurred_at >= cast({{ dbt.dateadd('day', 1 - window_days, as_of_date()) }} as {{ dbt.type_timestamp() }})
),

catalogue_events_known as (
    select * from {{ ref('stg_usage__events') }}
    where occurred_at >= cast({{ dbt.dateadd('day', 1 - 3 * window_days, as_of_date()) }} as {{ dbt.type_timestamp() }})
),

{#- A stored daily row holds every event loaded up to the night that last touched it
    (last_loaded_run_date). When that night is after the as-of date (a backfill of an
    earlier date), the row also counts events not yet known on the as-of date: those
    few rows are recomputed here from the events known on the as-of date, so the
    features of a date are the same whenever it is (re)built. -#}
later_touched_days as (
    select
        account_id,
        activity_date
    from stored_usage_days
    where last_loaded_run_date > {{ as_of_date() }}
),

recomputed_days as (
    select
        events.account_id,
        events.occurred_date as activity_date,
        count(*) as event_count,
        count(distinct events.user_id) as active_user_count
    from backfilled_day_events as events
    inner join later_touched_days
        on events.account_id = later_touched_days.account_id
        and events.occurred_date = later_touched_days.activity_date
    group by events.account_id, events.occurred_date
),

{#- The daily counts: the same backfill rule (a row last touched by a later night is
    recomputed from the counts known on the as-of date). -#}
{%- set later_touched_count_days %}
    select distinct
        {%- for key in usage_recompute_keys() %}
        {{ 'activity_date' if key == 'occurred_date' else key }} as {{ key }}{% if not loop.last %},{% endif %}
        {%- endfor %}
    from {{ ref('int_usage_daily_counts_resolved') }}
    where last_loaded_run_date > {{ as_of_date() }}
{%- endset %}

recomputed_count_rows as (
    select * from (
        {{ usage_daily_counts_sql('select * from ' ~ ref('stg_usage__daily_counts'), later_touched_count_days) }}
    ) as recomputed
),

count_rows as (
    select
        account_id,
        activity_date,
        feature,
        event_count,
        active_user_count
    from stored_count_rows
    where last_loaded_run_date <= {{ as_of_date() }}
    union all
    select
        account_id,
        activity_date,
        feature,
        event_count,
        active_user_count
    from recomputed_count_rows
),

usage_days as (
    select
        account_id,
        activity_date,
        cast(sum(event_count) as {{ dbt.type_bigint() }}) as event_count,
        max(active_user_count) as active_user_count
    from (
        select
            account_id,
            activity_date,
            event_count,
            active_user_count
        from stored_usage_days
        where last_loaded_run_date <= {{ as_of_date() }}
        union all
        select
            account_id,
            activity_date,
            event_count,
            active_user_count
        from recomputed_days
        union all
        select
            account_id,
            activity_date,
            event_count,
            active_user_count
        from count_rows
    ) as both_shapes
    group by account_id, activity_date
    having sum(event_count) > 0
),

window_bounds as (
    select
        {{ as_of_date() }} as as_of_date,
        cast({{ dbt.dateadd('day', 1 - window_days, as_of_date()) }} as date) as window_start_date,
        cast({{ dbt.dateadd('day', 1 - 2 * window_days, as_of_date()) }} as date) as prior_window_start_date,
        cast({{ dbt.dateadd('day', 1 - 3 * window_days, as_of_date()) }} as date) as catalogue_start_date
),

daily_summary as (
    select
        usage_days.account_id,
        min(usage_days.activity_date) as first_activity_date,
        max(usage_days.activity_date) as last_activity_date,
        sum(case when usage_days.activity_date >= window_bounds.window_start_date
            then usage_days.event_count else 0 end) as events_in_window,
        sum(case when usage_days.activity_date >= window_bounds.prior_window_start_date
                  and usage_days.activity_date < window_bounds.window_start_date
            then usage_days.event_count else 0 end) as events_in_prior_window,
        sum(case when usage_days.activity_date >= window_bounds.window_start_date
            then usage_days.active_user_count else 0 end) as user_days_in_window
    from usage_days
    cross join window_bounds
    where usage_days.activity_date <= window_bounds.as_of_date
    group by usage_days.account_id
),

window_events as (
    select
        events.account_id,
        events.user_id,
        events.feature
    from window_events_known as events
    cross join window_bounds
    where events.occurred_date >= window_bounds.window_start_date
      and events.occurred_date <= window_bounds.as_of_date
),

{#- distinct users and features per account in one pass: two grouping sets (a grouped
    COUNT(DISTINCT) is held in memory by DuckDB, duckdb/duckdb#18826, while a GROUP BY
    spills; and one consumer of window_events keeps it from being materialised) -#}
window_groups as (
    select
        account_id,
        user_id,
        feature,
        grouping(user_id) as is_feature_group
    from window_events
    group by grouping sets ((account_id, user_id), (account_id, feature))
),

{#- the daily counts of the window: features used, and the peak daily active users (a
    lower bound of the window's distinct users, which daily counts cannot give) -#}
window_count_rows as (
    select
        count_rows.account_id,
        count_rows.feature,
        count_rows.active_user_count
    from count_rows
    cross join window_bounds
    where count_rows.activity_date >= window_bounds.window_start_date
      and count_rows.activity_date <= window_bounds.as_of_date
      and count_rows.event_count > 0
),

window_items as (
    select
        account_id,
        user_id,
        feature,
        is_feature_group,
        cast(null as {{ dbt.type_bigint() }}) as counted_active_users
    from window_groups
    union all
    select
        account_id,
        cast(null as {{ dbt.type_string() }}) as user_id,
        feature,
        1 as is_feature_group,
        active_user_count as counted_active_users
    from window_count_rows
),

window_distincts as (
    select
        account_id,
        count(case when is_feature_group = 0 then user_id end) as event_users_in_window,
        max(counted_active_users) as peak_counted_users_in_window,
        count(distinct case when is_feature_group = 1 then feature end) as features_used_in_window
    from window_items
    group by account_id
),

{#- the catalogue (features used by any account in the last 3 windows) and whether the
    usage carries users at all (events with a user id, or counts with active users): without
    them the user measures (MAU, DAU, seat utilisation, stickiness) are missing, not 0 -#}
catalogue_items as (
    select
        events.feature,
        case when events.user_id is not null then 1 else 0 end as has_user
    from catalogue_events_known as events
    cross join window_bounds
    where events.occurred_date >= window_bounds.catalogue_start_date
      and events.occurred_date <= window_bounds.as_of_date
    union all
    select
        count_rows.feature,
        case when count_rows.active_user_count is not null then 1 else 0 end as has_user
    from count_rows
    cross join window_bounds
    where count_rows.activity_date >= window_bounds.catalogue_start_date
      and count_rows.activity_date <= window_bounds.as_of_date
      and count_rows.event_count > 0
),

feature_catalogue as (
    select
        count(distinct feature) as feature_catalogue_size,
        coalesce(max(has_user), 0) = 1 as has_user_counts
    from catalogue_items
),

final as (
    select
        daily_summary.account_id,
        {{ as_of_date() }} as as_of_date,
        daily_summary.first_activity_date,
        daily_summary.last_activity_date,
        daily_summary.events_in_window,
        daily_summary.events_in_prior_window,
        feature_catalogue.has_user_counts,
        case when feature_catalogue.has_user_counts
            then cast(1 as double) * coalesce(daily_summary.user_days_in_window, 0) / {{ window_days }}
        end as avg_daily_active_users,
        case when feature_catalogue.has_user_counts
            then greatest(
                coalesce(window_distincts.event_users_in_window, 0),
                coalesce(window_distincts.peak_counted_users_in_window, 0)
            )
        end as monthly_active_users,
        coalesce(window_distincts.features_used_in_window, 0) as features_used_in_window,
        feature_catalogue.feature_catalogue_size,
        case
            when daily_summary.events_in_prior_window > 0
                then cast(1 as double) * (daily_summary.events_in_window - daily_summary.events_in_prior_window)
                    / daily_summary.events_in_prior_window
        end as usage_trend
    from daily_summary
    left join window_distincts
        on daily_summary.account_id = window_distincts.account_id
    cross join feature_catalogue
)

select * from final
