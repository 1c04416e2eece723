{#- The segment history of the daily account marts in compact form: where each run of
    one segment value starts and ends, per account and reporting dimension. A run is a
    stretch of consecutive calendar days on each of which the daily marts hold the
    account with the same value (for tier, health status, value band, plan and adoption
    stage only days on which the account was live count; doc block
    revenue_segment_membership). int_account_segment_runs pairs the bounds into runs and
    int_account_segments_monthly reads the runs instead of every daily row, so a night
    costs the day's delta, not the history (docs/operations.md, cost model).

    One slice per night (as_of_date, the night that recorded the bound):
    - a 'start' bound (bound_date = the night) when the account's value differs from the
      previous calendar day's, or the account had no row that day;
    - an 'end' bound (bound_date = the previous night P) for each row of P whose run
      does not go on into the night (no row, another value, or P is not the day before).
    An incremental run reads two partitions of the daily marts: the as-of date and the
    latest one before it. A first build (or a full refresh) derives the same slices
    from every partition on or before the as-of date. -#}
{{ config(date_partitioned_incremental('as_of_date')) }}

{%- set dimensions = [
    ('tier', 'tiers_daily', 'assigned_tier', true),
    ('health_status', 'health_daily', 'health_status', true),
    ('value_band', 'segments_daily', 'value_band', true),
    ('company_size_band', 'segments_daily', 'company_size_band', false),
    ('industry_group', 'segments_daily', 'industry_group', false),
    ('region', 'segments_daily', 'region', false),
    ('plan', 'segments_daily', 'plan_name', true),
    ('adoption_stage', 'segments_daily', 'adoption_stage', true),
] %}

{#- incremental: the latest partition of the daily marts before the as-of date (a date
    literal, so that the scans below prune to two partitions) and whether it is the day
    before (a missed night breaks every run) -#}
{%- set previous_date = previous_partition_date(ref('fct_account_tiers_daily')) if is_incremental() else none -%}
{%- set day_before = (modules.datetime.date.fromisoformat(as_of_date_string()) - modules.datetime.timedelta(days=1)).isoformat() -%}
{%- set lowest_date = previous_date if previous_date else as_of_date_string() -%}

{%- if is_incremental() -%}
    {%- set daily_scope = "where as_of_date >= cast('" ~ lowest_date ~ "' as date) and as_of_date <= " ~ as_of_date() -%}
{%- else -%}
    {%- set daily_scope = "where as_of_date <= " ~ as_of_date() -%}
{%- endif -%}

with tiers_daily as (
    select * from {{ ref('fct_account_tiers_daily') }}
    {{ daily_scope }}
),

health_daily as (
    select * from {{ ref('fct_account_health_daily') }}
    {{ daily_scope }}
),

segments_daily as (
    select * from {{ ref('fct_account_segments_daily') }}
    {{ daily_scope }}
),

daily_values as (
    {%- for dimension, relation, column, live_only in dimensions %}
    select
        account_id,
        as_of_date,
        '{{ dimension }}' as segment_dimension,
        cast({{ column }} as {{ dbt.type_string() }}) as segment_value
    from {{ relation }}
    {%- if live_only %}
    where account_status = 'live'
    {%- endif %}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),

{% if is_incremental() %}
tonight as (
    select * from daily_values where as_of_date = {{ as_of_date() }}
),

previous_night as (
    {#- empty when there is no earlier partition -#}
    select * from daily_values where as_of_date < {{ as_of_date() }}
),

{#- a run goes on from the previous night only when that night is the day before -#}
{%- set continuous = previous_date is not none and previous_date == day_before %}

starts as (
    select
        tonight.account_id,
        tonight.segment_dimension,
        'start' as bound_type,
        tonight.as_of_date as bound_date,
        tonight.segment_value
    from tonight
    left join previous_night
        on previous_night.account_id = tonight.account_id
        and previous_night.segment_dimension = tonight.segment_dimension
        and {{ '1 = 1' if continuous else '1 = 0' }}
    where previous_night.account_id is null
        or coalesce(previous_night.segment_value, '<null>') <> coalesce(tonight.segment_value, '<null>')
),

ends as (
    select
        previous_night.account_id,
        previous_night.segment_dimension,
        'end' as bound_type,
        previous_night.as_of_date as bound_date,
        cast(null as {{ dbt.type_string() }}) as segment_value
    from previous_night
    left join tonight
        on tonight.account_id = previous_night.account_id
        and tonight.segment_dimension = previous_night.segment_dimension
        and {{ '1 = 1' if continuous else '1 = 0' }}
    where tonight.account_id is null
        or coalesce(previous_night.segment_value, '<null>') <> coalesce(tonight.segment_value, '<null>')
),

bounds as (
    select *, {{ as_of_date() }} as recorded_on from starts
    union all
    select *, {{ as_of_date() }} as recorded_on from ends
),
{% else %}
partitions as (
    {#- the nights of the daily history, each with the one before and after it -#}
    select
        as_of_date,
        lag(as_of_date) over (order by as_of_date) as previous_partition_date,
        lead(as_of_date) over (order by as_of_date) as next_partition_date
    from (select distinct as_of_date from tiers_daily) as nights
),

neighbours as (
    select
        daily_values.*,
        partitions.previous_partition_date,
        partitions.next_partition_date,
        lag(daily_values.as_of_date) over (
            partition by daily_values.account_id, daily_values.segment_dimension order by daily_values.as_of_date
        ) as previous_row_date,
        lag(daily_values.segment_value) over (
            partition by daily_values.account_id, daily_values.segment_dimension order by daily_values.as_of_date
        ) as previous_row_value,
        lead(daily_values.as_of_date) over (
            partition by daily_values.account_id, daily_values.segment_dimension order by daily_values.as_of_date
        ) as next_row_date,
        lead(daily_values.segment_value) over (
            partition by daily_values.account_id, daily_values.segment_dimension order by daily_values.as_of_date
        ) as next_row_value
    from daily_values
    inner join partitions
        on partitions.as_of_date = daily_values.as_of_date
),

bounds as (
    {#- the same slices as one incremental run per night would have recorded -#}
    select
        account_id,
        segment_dimension,
        'start' as bound_type,
        as_of_date as bound_date,
        segment_value,
        as_of_date as recorded_on
    from neighbours
    where previous_partition_date is null
        or previous_row_date is null
        or previous_row_date <> previous_partition_date
        or previous_partition_date <> cast({{ dbt.dateadd('day', -1, 'as_of_date') }} as date)
        or coalesce(previous_row_value, '<null>') <> coalesce(segment_value, '<null>')

    union all

    select
        account_id,
        segment_dimension,
        'end' as bound_type,
        as_of_date as bound_date,
        cast(null as {{ dbt.type_string() }}) as segment_value,
        next_partition_date as recorded_on
    from neighbours
    where next_partition_date is not null
        and (
            next_row_date is null
            or next_row_date <> next_partition_date
            or next_partition_date <> cast({{ dbt.dateadd('day', 1, 'as_of_date') }} as date)
            or coalesce(next_row_value, '<null>') <> coalesce(segment_value, '<null>')
        )
),
{% endif %}

final as (
    select
        cast(account_id as {{ dbt.type_string() }}) as account_id,
        cast(segment_dimension as {{ dbt.type_string() }}) as segment_dimension,
        cast(bound_type as {{ dbt.type_string() }}) as bound_type,
        cast(bound_date as date) as bound_date,
        cast(segment_value as {{ dbt.type_string() }}) as segment_value,
        cast(recorded_on as date) as as_of_date
    from bounds
)

select * from final
