{#- The assigned tier per account per as-of date, applying the migration rules to
    the computed tier: upward at once; downward only once the account's next renewal
    (captured when the downgrade became pending) has passed and it still qualifies
    lower. An account without a live subscription has no tier (its tier ends at once,
    'churned'); a new or returning account gets its computed tier at once ('initial').
    The previous assignment is read from this model's own history (the row of the
    latest as-of date before the run's, the previous night), so re-running a date gives
    the same rows and a backfill rebuilds one date from the dates before it. Doc block tier_migration. -#}
{{ config(date_partitioned_incremental('as_of_date')) }}

{%- set cadence = var('tier_review_cadence_months') %}

with computed as (
    select * from {{ ref('int_account_tiers_computed') }}
),

tier_targets as (
    select * from {{ ref('tier_targets') }}
),

{% if is_incremental() %}
{#- the previous night's rows (the latest partition before the as-of date), not the
    whole history. DuckDB turns the equality with the scalar subquery into a join whose
    one-row build side is pushed into the scan as a filter (dynamic join filter
    pushdown), so only that partition's row groups are read. An account missing from the
    previous night (deleted from the CRM extract and restored later) starts again with
    'initial', like a new account. -#}
previous as (
    select
        account_id,
        as_of_date as previous_as_of_date,
        assigned_tier_number as previous_tier_number,
        assigned_since_date as previous_assigned_since_date,
        is_downgrade_pending as previous_is_downgrade_pending,
        pending_downgrade_date as previous_pending_downgrade_date,
        last_tier_review_date as previous_last_tier_review_date,
        next_tier_review_date as previous_next_tier_review_date
    from {{ this }}
    where as_of_date = (
        select max(as_of_date) from {{ this }} where as_of_date < {{ as_of_date() }}
    )
),
{% else %}
previous as (
    select
        cast(null as {{ dbt.type_string() }}) as account_id,
        cast(null as date) as previous_as_of_date,
        cast(null as {{ dbt.type_int() }}) as previous_tier_number,
        cast(null as date) as previous_assigned_since_date,
        cast(null as boolean) as previous_is_downgrade_pending,
        cast(null as date) as previous_pending_downgrade_date,
        cast(null as date) as previous_last_tier_review_date,
        cast(null as date) as previous_next_tier_review_date
    where 1 = 0
),
{% endif %}

joined as (
    select
        computed.*,
        previous.previous_as_of_date,
        previous.previous_tier_number,
        previous.previous_assigned_since_date,
        coalesce(previous.previous_is_downgrade_pending, false) as previous_is_downgrade_pending,
        previous.previous_pending_downgrade_date,
        previous.previous_last_tier_review_date,
        previous.previous_next_tier_review_date
    from computed
    left join previous
        on computed.account_id = previous.account_id
),

migrated as (
    select
        *,
        case
            when computed_tier_number is null and previous_tier_number is null then 'no_tier'
            {#- no live subscription: the tier ends at once (nothing to renew) -#}
            when computed_tier_number is null then 'churned'
            {#- a first tier, or a tier again after days without one: at once -#}
            when previous_tier_number is null then 'initial'
            when computed_tier_number < previous_tier_number then 'upgrade'
            when computed_tier_number = previous_tier_number then 'confirmed'
            {#- qualifies lower from here on; nothing left to renew = no grace period -#}
            when next_renewal_date is null then 'downgrade'
            when previous_is_downgrade_pending
                 and previous_pending_downgrade_date <= as_of_date then 'downgrade'
            when not previous_is_downgrade_pending
                 and next_renewal_date <= as_of_date then 'downgrade'
            else 'held'
        end as migration_action
    from joined
),

assigned as (
    select
        *,
        case
            when migration_action in ('held') then previous_tier_number
            else computed_tier_number
        end as assigned_tier_number,
        migration_action = 'held' as is_downgrade_pending,
        case when migration_action = 'held' then computed_tier_number end as pending_downgrade_tier_number,
        case
            when migration_action = 'held' and previous_is_downgrade_pending then previous_pending_downgrade_date
            when migration_action = 'held' then next_renewal_date
        end as pending_downgrade_date
    from migrated
),

reviewed as (
    select
        *,
        previous_as_of_date is not null
            and coalesce(assigned_tier_number, 0) <> coalesce(previous_tier_number, 0) as is_tier_changed,
        case
            when previous_as_of_date is null
                 or coalesce(assigned_tier_number, 0) <> coalesce(previous_tier_number, 0) then as_of_date
            else previous_assigned_since_date
        end as assigned_since_date,
        case
            when assigned_tier_number is null then null
            when previous_tier_number is null
                 or assigned_tier_number <> previous_tier_number
                 or (migration_action = 'held' and not previous_is_downgrade_pending)
                 or previous_next_tier_review_date <= as_of_date
                then as_of_date
            else previous_last_tier_review_date
        end as last_tier_review_date
    from assigned
),

final as (
    select
        reviewed.account_id,
        reviewed.as_of_date,
        reviewed.assigned_tier_number as tier_number,
        assigned_tiers.tier_name as assigned_tier,
        reviewed.assigned_tier_number,
        reviewed.computed_tier_number,
        reviewed.computed_tier,
        reviewed.tier_method,
        reviewed.tier_score,
        reviewed.arr_points,
        reviewed.expansion_points,
        reviewed.strategic_points,
        reviewed.complexity_health_points,
        reviewed.arr_contribution,
        reviewed.expansion_contribution,
        reviewed.strategic_contribution,
        reviewed.complexity_health_contribution,
        reviewed.rules_criterion,
        reviewed.rules_tier_number,
        reviewed.rules_reason,
        reviewed.scorecard_tier_number,
        reviewed.scorecard_reason,
        reviewed.computed_tier_reason,
        reviewed.arr_reporting,
        reviewed.plan_name,
        reviewed.has_active_subscription,
        reviewed.account_status,
        reviewed.growth_potential,
        reviewed.complexity_segment,
        reviewed.health_status,
        reviewed.is_high_churn_risk,
        reviewed.is_strategic_account,
        reviewed.next_renewal_date,
        reviewed.migration_action,
        reviewed.previous_tier_number,
        reviewed.is_tier_changed,
        reviewed.assigned_since_date,
        reviewed.is_downgrade_pending,
        reviewed.pending_downgrade_tier_number,
        pending_tiers.tier_name as pending_downgrade_tier,
        reviewed.pending_downgrade_date,
        reviewed.last_tier_review_date,
        cast(
            case reviewed.assigned_tier_number
                {%- for tier, months in cadence.items() %}
                when {{ tier }} then {{ dbt.dateadd('month', months, 'reviewed.last_tier_review_date') }}
                {%- endfor %}
            end as date
        ) as next_tier_review_date,
        case reviewed.migration_action
            when 'initial' then
                case
                    when reviewed.previous_as_of_date is null then 'First assessment: '
                    else 'Live subscription (again), tier assigned at once: '
                end
                || reviewed.computed_tier || ' (' || reviewed.computed_tier_reason || ')'
            when 'upgrade' then 'Upgraded at once to ' || reviewed.computed_tier || ': ' || reviewed.computed_tier_reason
            when 'confirmed' then reviewed.computed_tier || ': ' || reviewed.computed_tier_reason
            when 'downgrade' then 'Downgraded to ' || reviewed.computed_tier
                || case
                    when reviewed.previous_is_downgrade_pending
                        then ' after renewal on ' || cast(reviewed.previous_pending_downgrade_date as {{ dbt.type_string() }})
                    else ' (no renewal ahead to wait for)'
                end
                || ': ' || reviewed.computed_tier_reason
            when 'churned' then 'No tier since ' || cast(reviewed.as_of_date as {{ dbt.type_string() }})
                || ': no live subscription (was ' || previous_tiers.tier_name || ')'
            when 'no_tier' then 'No tier: ' || reviewed.computed_tier_reason
            when 'held' then 'Kept ' || assigned_tiers.tier_name || ' until renewal on '
                || cast(
                    case
                        when reviewed.previous_is_downgrade_pending then reviewed.previous_pending_downgrade_date
                        else reviewed.next_renewal_date
                    end as {{ dbt.type_string() }}
                )
                || '; qualifies for ' || reviewed.computed_tier || ': ' || reviewed.computed_tier_reason
        end as tier_reason
    from reviewed
    left join tier_targets as assigned_tiers
        on reviewed.assigned_tier_number = assigned_tiers.tier_number
    left join tier_targets as pending_tiers
        on reviewed.pending_downgrade_tier_number = pending_tiers.tier_number
    left join tier_targets as previous_tiers
        on reviewed.previous_tier_number = previous_tiers.tier_number
)

select * from final
