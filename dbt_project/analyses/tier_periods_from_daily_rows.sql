{#- Reference implementation, not a model: int_account_tier_periods_derived as it was before
    it read the compact tier changes (int_account_tier_changes), straight from every daily
    row of int_account_tiers_assigned. tests/dbt/test_bounded_nights.py compiles it and
    checks that the model gives the same periods. -#}
{#- Tier history as SCD type 2, derived from the daily assigned tiers (never from the
    wall clock): consecutive as-of dates with the same assigned tier form one period.
    Days without a tier (no live subscription: churned, prospect) form no period: they
    only close the tier period before them. valid_to is the first as-of date of the
    next period or of the first day without a tier (exclusive). The last period
    is current when the account has a row on the latest as-of date of the daily
    history; otherwise it closes the day after the account's last daily row. Rebuilt
    in full on every run, so a rerun or a backfill always agrees with the daily rows. -#}
with daily as (
    select * from {{ ref('int_account_tiers_assigned') }}
),

latest_run as (
    select max(as_of_date) as latest_as_of_date from daily
),

flagged as (
    select
        account_id,
        as_of_date,
        assigned_tier_number,
        assigned_tier,
        migration_action,
        tier_reason,
        {#- a day without a tier (null) starts a stretch of its own, dropped below -#}
        case
            when coalesce(lag(assigned_tier_number) over (partition by account_id order by as_of_date), 0)
                = coalesce(assigned_tier_number, 0)
                and row_number() over (partition by account_id order by as_of_date) > 1
                then 0
            else 1
        end as is_period_start
    from daily
),

numbered as (
    select
        *,
        sum(is_period_start) over (
            partition by account_id order by as_of_date rows between unbounded preceding and current row
        ) as period_number
    from flagged
),

periods as (
    select
        account_id,
        period_number,
        min(as_of_date) as valid_from,
        max(as_of_date) as last_observed_date,
        count(*) as observed_days
    from numbered
    group by account_id, period_number
),

period_starts as (
    select
        numbered.account_id,
        numbered.period_number,
        numbered.assigned_tier_number,
        numbered.assigned_tier,
        numbered.migration_action,
        numbered.tier_reason
    from numbered
    where numbered.is_period_start = 1
),

stretches as (
    select
        periods.account_id,
        periods.period_number,
        periods.valid_from,
        periods.last_observed_date,
        periods.observed_days,
        lead(periods.valid_from) over (partition by periods.account_id order by periods.valid_from) as next_valid_from,
        lag(period_starts.assigned_tier_number) over (
            partition by periods.account_id order by periods.valid_from
        ) as preceding_tier_number,
        period_starts.assigned_tier_number,
        period_starts.assigned_tier,
        period_starts.migration_action,
        period_starts.tier_reason
    from periods
    inner join period_starts
        on periods.account_id = period_starts.account_id
        and periods.period_number = period_starts.period_number
),

bounded as (
    {#- tier periods only; previous_tier_number is the tier of the previous tier period -#}
    select
        *,
        lag(assigned_tier_number) over (partition by account_id order by valid_from) as previous_tier_number
    from stretches
    where assigned_tier_number is not null
),

final as (
    select
        bounded.account_id,
        bounded.account_id || '|' || cast(bounded.valid_from as {{ dbt.type_string() }}) as tier_period_id,
        bounded.assigned_tier_number as tier_number,
        bounded.assigned_tier,
        bounded.previous_tier_number,
        bounded.valid_from,
        case
            when bounded.next_valid_from is not null then bounded.next_valid_from
            when bounded.last_observed_date < latest_run.latest_as_of_date
                then cast({{ dbt.dateadd('day', 1, 'bounded.last_observed_date') }} as date)
        end as valid_to,
        bounded.last_observed_date,
        bounded.observed_days,
        bounded.next_valid_from is null
            and bounded.last_observed_date = latest_run.latest_as_of_date as is_current,
        case
            when bounded.previous_tier_number is null then 'initial'
            when bounded.preceding_tier_number is null then 'reactivated'
            when bounded.assigned_tier_number < bounded.previous_tier_number then 'upgrade'
            else 'downgrade'
        end as change_type,
        bounded.tier_reason as change_reason
    from bounded
    cross join latest_run
)

select * from final
