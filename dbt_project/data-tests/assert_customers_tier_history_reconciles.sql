{#- The SCD2 tier history agrees with the daily tier rows exactly, on the run's as-of
    date (each night checks its own partition; the earlier ones were checked on their
    nights and never change, so the test costs the night, not the history):
    1. every daily row of the as-of date with a tier falls in exactly one history
       period, with the same tier; a daily row without a tier (no live subscription)
       falls in none;
    2. the history's periods starting on the as-of date are exactly the daily rows of
       that date with a tier where the account's tier differs from its row of the
       previous night (or the account has none).
    Returns the offending rows. -#}
with nights as (
    {#- the as-of date and the previous night -#}
    select * from {{ ref('fct_account_tiers_daily') }}
    where as_of_date = {{ as_of_date() }}
        or as_of_date = (
            select max(as_of_date) from {{ ref('fct_account_tiers_daily') }}
            where as_of_date < {{ as_of_date() }}
        )
),

daily as (
    select * from (
        select
            account_id,
            as_of_date,
            tier_number,
            lag(tier_number) over (partition by account_id order by as_of_date) as previous_daily_tier_number
        from nights
    ) as compared
    where as_of_date = {{ as_of_date() }}
),

history as (
    select * from {{ ref('dim_account_tier_history') }}
),

coverage as (
    select
        daily.account_id,
        daily.as_of_date,
        daily.tier_number,
        count(history.account_id) as covering_periods,
        min(history.tier_number) as history_tier_number
    from daily
    left join history
        on daily.account_id = history.account_id
        and history.valid_from <= daily.as_of_date
        and (history.valid_to is null or daily.as_of_date < history.valid_to)
    group by daily.account_id, daily.as_of_date, daily.tier_number
),

coverage_errors as (
    select
        account_id,
        as_of_date,
        'daily row not covered by exactly one period of the same tier' as failure
    from coverage
    where (tier_number is not null and (covering_periods <> 1 or history_tier_number <> tier_number))
       or (tier_number is null and covering_periods <> 0)
),

daily_changes as (
    select account_id, as_of_date as change_date
    from daily
    where tier_number is not null
      and (previous_daily_tier_number is null or previous_daily_tier_number <> tier_number)
),

history_changes as (
    select account_id, valid_from as change_date
    from history
    where valid_from = {{ as_of_date() }}
),

change_errors as (
    select
        coalesce(daily_changes.account_id, history_changes.account_id) as account_id,
        coalesce(daily_changes.change_date, history_changes.change_date) as as_of_date,
        case
            when history_changes.account_id is null then 'tier change in the daily rows missing from the history'
            else 'history period starting without a tier change in the daily rows'
        end as failure
    from daily_changes
    full outer join history_changes
        on daily_changes.account_id = history_changes.account_id
        and daily_changes.change_date = history_changes.change_date
    where daily_changes.account_id is null
       or history_changes.account_id is null
),

final as (
    select * from coverage_errors
    union all
    select * from change_errors
)

select * from final
