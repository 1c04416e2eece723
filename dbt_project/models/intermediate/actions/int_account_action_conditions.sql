{#- The action conditions that hold on the as-of date: one row per live account, action
    type and reason whose condition holds tonight and whose tier has a row for the type in
    seed action_playbook (which gives the priority, the days to the due date and the
    playbook). int_account_actions_tracked opens, keeps and closes actions from these rows
    and its own previous night. Rebuilt each night from tonight's state only. Doc block
    action_feed. -#}
{%- set renewal_days = var('signal_renewal_days') | sort %}
{%- set priorities = var('action_priorities') %}

with states as (
    select * from {{ ref('int_account_signal_states') }}
    where as_of_date = {{ as_of_date() }}
),

tiers as (
    select * from {{ ref('int_account_tiers_assigned') }}
    where as_of_date = {{ as_of_date() }}
),

health as (
    select * from {{ ref('int_account_health_scored') }}
    where as_of_date = {{ as_of_date() }}
),

playbook as (
    select * from {{ ref('action_playbook') }}
),

tier_names as (
    select * from {{ ref('tier_targets') }}
),

live as (
    {#- only live accounts (with a tier) have actions -#}
    select
        states.account_id,
        states.as_of_date,
        states.assigned_tier_number as tier_number,
        states.assigned_tier as tier_name,
        states.csm_owner_id,
        states.next_renewal_date,
        states.days_to_renewal,
        {%- for days in renewal_days %}
        states.is_renewal_within_{{ days }}d,
        {%- endfor %}
        states.health_status,
        states.health_score,
        states.seat_utilisation,
        states.usage_trend,
        states.is_seat_utilisation_high,
        states.is_usage_growing,
        states.is_tier_changed,
        states.is_downgrade_pending,
        states.pending_downgrade_date,
        tiers.pending_downgrade_tier_number,
        tiers.assigned_since_date,
        tiers.tier_reason,
        previous_tier_names.tier_name as previous_tier_name,
        health.weakest_component
    from states
    inner join tiers
        on states.account_id = tiers.account_id
    left join health
        on states.account_id = health.account_id
    left join tier_names as previous_tier_names
        on states.previous_tier_number = previous_tier_names.tier_number
    where states.assigned_tier_number is not null
),

candidates as (
    {#- tier_changed: from the night the tier changed until its due date; opens only on the
        night of the change (can_open), so an old change never opens an action -#}
    select
        account_id, as_of_date, tier_number, tier_name, csm_owner_id,
        'tier_changed' as action_type,
        'to_tier_' || cast(tier_number as {{ dbt.type_string() }}) || '_on_'
            || cast(assigned_since_date as {{ dbt.type_string() }}) as reason_code,
        case
            when previous_tier_name is null
                then 'Live subscription again: ' || tier_name || ' from '
                    || cast(assigned_since_date as {{ dbt.type_string() }}) || ' (' || tier_reason || ')'
            else 'Tier changed from ' || previous_tier_name || ' to ' || tier_name || ' on '
                || cast(assigned_since_date as {{ dbt.type_string() }}) || ' (' || tier_reason || ')'
        end as action_reason,
        is_tier_changed as can_open,
        assigned_since_date as window_start_date,
        cast(null as date) as deadline_date
    from live
    union all
    select
        account_id, as_of_date, tier_number, tier_name, csm_owner_id,
        'downgrade_pending' as action_type,
        'to_tier_' || cast(pending_downgrade_tier_number as {{ dbt.type_string() }}) as reason_code,
        tier_reason as action_reason,
        true as can_open,
        cast(null as date) as window_start_date,
        pending_downgrade_date as deadline_date
    from live
    where is_downgrade_pending
    union all
    select
        account_id, as_of_date, tier_number, tier_name, csm_owner_id,
        'health_fell' as action_type,
        health_status as reason_code,
        'Health ' || health_status || ' (score ' || cast(health_score as {{ dbt.type_string() }})
            || coalesce('; weakest component: ' || weakest_component, '') || ')' as action_reason,
        true as can_open,
        cast(null as date) as window_start_date,
        cast(null as date) as deadline_date
    from live
    where health_status in ('at-risk', 'critical')
    union all
    select
        account_id, as_of_date, tier_number, tier_name, csm_owner_id,
        'renewal_at_risk' as action_type,
        {#- the tightest renewal window the account is in -#}
        case
            {%- for days in renewal_days %}
            when is_renewal_within_{{ days }}d then 'renewal_{{ days }}d'
            {%- endfor %}
        end as reason_code,
        'Renewal on ' || cast(next_renewal_date as {{ dbt.type_string() }}) || ' (in '
            || cast(days_to_renewal as {{ dbt.type_string() }}) || ' days) while health is '
            || coalesce(health_status || ' (score ' || cast(health_score as {{ dbt.type_string() }}) || ')',
                        'unknown (no health data)') as action_reason,
        true as can_open,
        cast(null as date) as window_start_date,
        next_renewal_date as deadline_date
    from live
    where is_renewal_within_{{ renewal_days | last }}d
      and coalesce(health_status, 'unknown') <> 'healthy'
    union all
    select
        account_id, as_of_date, tier_number, tier_name, csm_owner_id,
        'expansion_signal' as action_type,
        'seat_utilisation' as reason_code,
        'Seat utilisation ' || cast(cast(round(100 * seat_utilisation, 0) as {{ dbt.type_int() }}) as {{ dbt.type_string() }})
            || '% (at least {{ (100 * var("signal_expansion_min_seat_utilisation")) | int }}%)' as action_reason,
        true as can_open,
        cast(null as date) as window_start_date,
        cast(null as date) as deadline_date
    from live
    where is_seat_utilisation_high
    union all
    select
        account_id, as_of_date, tier_number, tier_name, csm_owner_id,
        'expansion_signal' as action_type,
        'usage_growth' as reason_code,
        'Usage up ' || cast(cast(round(100 * usage_trend, 0) as {{ dbt.type_int() }}) as {{ dbt.type_string() }})
            || '% on the prior window (at least {{ (100 * var("signal_expansion_min_usage_growth")) | int }}%)' as action_reason,
        true as can_open,
        cast(null as date) as window_start_date,
        cast(null as date) as deadline_date
    from live
    where is_usage_growing
    union all
    select
        account_id, as_of_date, tier_number, tier_name, csm_owner_id,
        'owner_missing' as action_type,
        'no_csm_owner' as reason_code,
        tier_name || ' account without a CSM owner in the CRM' as action_reason,
        true as can_open,
        cast(null as date) as window_start_date,
        cast(null as date) as deadline_date
    from live
    where csm_owner_id is null
),

with_playbook as (
    {#- the playbook row of the type and tier: one for the exact reason wins over the
        type's catch-all (reason_code '*'; not an empty cell: dbt-spark's session connection
        loads a seed's empty string cell as the text 'None') -#}
    select
        candidates.*,
        playbook.priority,
        playbook.due_days,
        playbook.playbook,
        row_number() over (
            partition by candidates.account_id, candidates.action_type, candidates.reason_code
            order by case when playbook.reason_code = '*' then 1 else 0 end
        ) as playbook_rank
    from candidates
    inner join playbook
        on candidates.action_type = playbook.action_type
        and candidates.tier_number = playbook.tier_number
        and (playbook.reason_code = '*' or playbook.reason_code = candidates.reason_code)
),

final as (
    select
        account_id,
        as_of_date,
        action_type,
        reason_code,
        action_reason,
        can_open,
        tier_number,
        tier_name,
        csm_owner_id,
        priority,
        case priority
            {%- for priority in priorities %}
            when '{{ priority }}' then {{ loop.index }}
            {%- endfor %}
        end as priority_rank,
        due_days,
        {#- the due date if the action opens tonight: due_days on, but never after the
            renewal or pending-downgrade date it is about -#}
        case
            when deadline_date is not null
                 and deadline_date < cast({{ dbt.dateadd('day', 'due_days', 'as_of_date') }} as date)
                then deadline_date
            else cast({{ dbt.dateadd('day', 'due_days', 'as_of_date') }} as date)
        end as due_date_if_opened,
        playbook
    from with_playbook
    {#- a tier change is an action for due_days from the change, then it expires #}
    where playbook_rank = 1
      and (window_start_date is null
           or as_of_date <= cast({{ dbt.dateadd('day', 'due_days', 'window_start_date') }} as date))
)

select * from final
