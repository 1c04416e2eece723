{#- Tier history as SCD type 2, derived from the daily assigned tiers (never from the
    wall clock): consecutive as-of dates with the same assigned tier form one period.
    Days without a tier (no live subscription: churned, prospect) form no period: they
    only close the tier period before them. valid_to is the first as-of date of the
    next period or of the first day without a tier (exclusive). A period whose account
    has no row on a later night (it left the CRM extract) closes the day after its last
    row, and keeps that end when the account comes back. The last period is current
    when the account has a row on the latest as-of date of the daily history. A period
    after days without a tier (either kind) is 'reactivated', whatever its tier.
    Rebuilt in full on every run from the compact changes (int_account_tier_changes: one
    row per stretch of one tier, not per day), so a rerun or a backfill always agrees
    with the daily rows and a night costs the changes, not the history. -#}
with changes as (
    select * from {{ ref('int_account_tier_changes') }}
),

nights as (
    {#- every as-of date of the daily history, numbered (a stretch's observed days) -#}
    select
        as_of_date,
        row_number() over (order by as_of_date) as night_number
    from (select distinct as_of_date from {{ ref('int_account_tiers_assigned') }}) as night_dates
),

latest_run as (
    select max(as_of_date) as latest_as_of_date from nights
),

stretch_starts as (
    select
        account_id,
        change_date as valid_from,
        assigned_tier_number,
        assigned_tier,
        migration_action,
        tier_reason,
        lead(change_date) over (partition by account_id order by change_date) as next_valid_from
    from changes
    where change_kind = 'start'
),

stretch_ends as (
    {#- the night an account stopped appearing, inside the stretch it ended -#}
    select
        stretch_starts.account_id,
        stretch_starts.valid_from,
        min(changes.change_date) as left_date
    from stretch_starts
    inner join changes
        on changes.account_id = stretch_starts.account_id
        and changes.change_kind = 'end'
    where changes.change_date >= stretch_starts.valid_from
        and (stretch_starts.next_valid_from is null or changes.change_date < stretch_starts.next_valid_from)
    group by stretch_starts.account_id, stretch_starts.valid_from
),

stretches as (
    {#- a stretch's last row: the night the account left, else the night before the
        next stretch, else the latest night -#}
    select
        stretch_starts.account_id,
        stretch_starts.valid_from,
        coalesce(stretch_ends.left_date, night_before_next.as_of_date, latest_run.latest_as_of_date)
            as last_observed_date,
        stretch_ends.left_date is not null as has_left,
        stretch_starts.next_valid_from,
        lag(stretch_starts.assigned_tier_number) over (
            partition by stretch_starts.account_id order by stretch_starts.valid_from
        ) as preceding_tier_number,
        {#- the stretch before ended with the account leaving the CRM extract -#}
        coalesce(lag(stretch_ends.left_date is not null) over (
            partition by stretch_starts.account_id order by stretch_starts.valid_from
        ), false) as has_preceding_left,
        stretch_starts.assigned_tier_number,
        stretch_starts.assigned_tier,
        stretch_starts.migration_action,
        stretch_starts.tier_reason
    from stretch_starts
    cross join latest_run
    left join stretch_ends
        on stretch_ends.account_id = stretch_starts.account_id
        and stretch_ends.valid_from = stretch_starts.valid_from
    left join nights as next_night
        on next_night.as_of_date = stretch_starts.next_valid_from
    left join nights as night_before_next
        on night_before_next.night_number = next_night.night_number - 1
),

observed as (
    select
        stretches.*,
        last_night.night_number - first_night.night_number + 1 as observed_days
    from stretches
    inner join nights as first_night
        on first_night.as_of_date = stretches.valid_from
    inner join nights as last_night
        on last_night.as_of_date = stretches.last_observed_date
),

bounded as (
    {#- tier periods only; previous_tier_number is the tier of the previous tier period -#}
    select
        *,
        lag(assigned_tier_number) over (partition by account_id order by valid_from) as previous_tier_number
    from observed
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
            {#- left the CRM extract: the day after its last row, also once it is back (a
                closed period never changes when a later one starts) #}
            when bounded.has_left then cast({{ dbt.dateadd('day', 1, 'bounded.last_observed_date') }} as date)
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
            {#- a tier again after days without one: no live subscription, or no row at all
                (the account left the CRM extract and came back), whatever the tier #}
            when bounded.preceding_tier_number is null or bounded.has_preceding_left then 'reactivated'
            when bounded.assigned_tier_number < bounded.previous_tier_number then 'upgrade'
            else 'downgrade'
        end as change_type,
        bounded.tier_reason as change_reason
    from bounded
    cross join latest_run
)

select * from final
