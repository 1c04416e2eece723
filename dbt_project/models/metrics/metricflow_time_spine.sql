{#- The day time spine MetricFlow requires (dbt's time_spine property in
    _metrics__models.yml): one row per day from var metrics_time_spine_start_date to
    var metrics_time_spine_end_date (end excluded). dbt's own cross-database date_spine
    macro (a numbers table of cross-joined digits and dbt.dateadd), so it builds on every
    engine. The retention, tier and health metrics never join to it (no cumulative or
    offset metrics); MetricFlow refuses to load a project without one. -#}
with days as (
    {{ dbt.date_spine(
        'day',
        "cast('" ~ var('metrics_time_spine_start_date') ~ "' as date)",
        "cast('" ~ var('metrics_time_spine_end_date') ~ "' as date)"
    ) }}
),

final as (
    select cast(date_day as date) as date_day
    from days
)

select * from final
