{#- The daily assigned tiers in compact form, for the tier history: where each stretch of
    an account's nights with one assigned tier (or none) starts, and where an account
    stops appearing. int_account_tier_periods_derived builds the SCD2 periods from these
    rows instead of from every daily row, so a night costs the day's delta, not the
    history (doc block tier_history). One slice per night (as_of_date):
    - 'start' (change_date = the night): the account's assigned tier differs from its row
      of the previous night, or it had no row that night; with the row's tier, migration
      action and reason;
    - 'end' (change_date = the previous night P): the account had a row on P and has
      none tonight (it left the CRM extract).
    An incremental run reads two partitions of int_account_tiers_assigned: the as-of
    date and the previous night. A first build (or a full refresh) derives the same
    slices from every partition. -#}
{{ config(date_partitioned_incremental('as_of_date')) }}

with daily as (
    select * from {{ ref('int_account_tiers_assigned') }}
    {%- if is_incremental() %}
    where as_of_date = {{ as_of_date() }}
        or as_of_date = (
            select max(as_of_date) from {{ ref('int_account_tiers_assigned') }}
            where as_of_date < {{ as_of_date() }}
        )
    {%- endif %}
),

nights as (
    select
        as_of_date,
        lag(as_of_date) over (order by as_of_date) as previous_night,
        lead(as_of_date) over (order by as_of_date) as next_night
    from (select distinct as_of_date from daily) as night_dates
),

neighbours as (
    select
        daily.account_id,
        daily.as_of_date,
        daily.assigned_tier_number,
        daily.assigned_tier,
        daily.migration_action,
        daily.tier_reason,
        nights.previous_night,
        nights.next_night,
        lag(daily.as_of_date) over (partition by daily.account_id order by daily.as_of_date) as previous_row_date,
        lag(daily.assigned_tier_number) over (
            partition by daily.account_id order by daily.as_of_date
        ) as previous_tier_number,
        lead(daily.as_of_date) over (partition by daily.account_id order by daily.as_of_date) as next_row_date
    from daily
    inner join nights
        on nights.as_of_date = daily.as_of_date
),

changes as (
    select
        account_id,
        as_of_date,
        'start' as change_kind,
        as_of_date as change_date,
        assigned_tier_number,
        assigned_tier,
        migration_action,
        tier_reason
    from neighbours
    where previous_night is null
        or previous_row_date is null
        or previous_row_date <> previous_night
        or coalesce(previous_tier_number, 0) <> coalesce(assigned_tier_number, 0)

    union all

    select
        account_id,
        next_night as as_of_date,
        'end' as change_kind,
        as_of_date as change_date,
        cast(null as {{ dbt.type_int() }}) as assigned_tier_number,
        cast(null as {{ dbt.type_string() }}) as assigned_tier,
        cast(null as {{ dbt.type_string() }}) as migration_action,
        cast(null as {{ dbt.type_string() }}) as tier_reason
    from neighbours
    where next_night is not null
        and (next_row_date is null or next_row_date <> next_night)
),

final as (
    select
        cast(account_id as {{ dbt.type_string() }}) as account_id,
        cast(as_of_date as date) as as_of_date,
        cast(change_kind as {{ dbt.type_string() }}) as change_kind,
        cast(change_date as date) as change_date,
        cast(assigned_tier_number as {{ dbt.type_int() }}) as assigned_tier_number,
        cast(assigned_tier as {{ dbt.type_string() }}) as assigned_tier,
        cast(migration_action as {{ dbt.type_string() }}) as migration_action,
        cast(tier_reason as {{ dbt.type_string() }}) as tier_reason
    from changes
    {%- if is_incremental() %}
    where as_of_date = {{ as_of_date() }}
    {%- endif %}
)

select * from final
