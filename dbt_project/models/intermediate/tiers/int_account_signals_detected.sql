{#- Action signals: one row per account per signal per as-of date of the state
    history. A signal fires when the account enters the state (the state is true on
    a date and was false, or the account unknown, on its previous as-of date in the
    history), never every day it stays there. Incremental on as_of_date: a night compares
    the as-of date's states with the previous night's (the latest partition before it,
    read with a scalar-subquery filter as in int_account_tiers_assigned), not the whole
    history; a first build or a full refresh derives every date of the state history,
    so that the published fct_account_signals can be fully refreshed. Doc block
    action_signals. -#}
{{ config(date_partitioned_incremental('as_of_date')) }}
{%- set renewal_days = var('signal_renewal_days') %}

with states as (
    select * from {{ ref('int_account_signal_states') }}
    {%- if is_incremental() %}
    where as_of_date = {{ as_of_date() }}
        or as_of_date = (
            select max(as_of_date) from {{ ref('int_account_signal_states') }}
            where as_of_date < {{ as_of_date() }}
        )
    {%- endif %}
),

{%- set state_columns = ['is_health_at_risk_or_worse', 'is_health_critical', 'is_seat_utilisation_high',
                         'is_usage_growing', 'is_downgrade_pending'] %}
{%- for days in renewal_days %}{% do state_columns.append('is_renewal_within_' ~ days ~ 'd') %}{% endfor %}

compared as (
    {#- Every date of the state history against the account's previous as-of date
        in it (lag): unknown before = false, so an account's first date fires. -#}
    select
        states.*,
        lag(states.as_of_date) over (partition by states.account_id order by states.as_of_date)
            as previous_as_of_date,
        {%- for column in state_columns %}
        coalesce(
            lag(states.{{ column }}) over (partition by states.account_id order by states.as_of_date),
            false
        ) as {{ column | replace('is_', 'was_', 1) }}{% if not loop.last %},{% endif %}
        {%- endfor %}
    from states
),

signals as (
    {%- for days in renewal_days %}
    {#- Only the tightest renewal window entered today fires (a jump from 61 to 13 days
        fires the 14-day signal, not all three). -#}
    select
        'renewal_{{ days }}d' as signal_type, 'renewal' as signal_category,
        'Renewal on ' || cast(next_renewal_date as {{ dbt.type_string() }}) || ' in '
            || cast(days_to_renewal as {{ dbt.type_string() }}) || ' days' as signal_detail,
        compared.*
    from compared
    where is_renewal_within_{{ days }}d and not was_renewal_within_{{ days }}d
        {%- for tighter in renewal_days if tighter < days %}
      and not is_renewal_within_{{ tighter }}d
        {%- endfor %}
    union all
    {% endfor %}
    select
        'health_at_risk' as signal_type, 'health' as signal_category,
        'Health dropped to at-risk (score ' || cast(health_score as {{ dbt.type_string() }}) || ')' as signal_detail,
        compared.*
    from compared
    where health_status = 'at-risk' and not was_health_at_risk_or_worse
    union all
    select
        'health_critical' as signal_type, 'health' as signal_category,
        'Health dropped to critical (score ' || cast(health_score as {{ dbt.type_string() }}) || ')' as signal_detail,
        compared.*
    from compared
    where is_health_critical and not was_health_critical
    union all
    select
        'expansion_seat_utilisation' as signal_type, 'expansion' as signal_category,
        'Seat utilisation ' || cast(cast(round(100 * seat_utilisation, 0) as {{ dbt.type_int() }}) as {{ dbt.type_string() }})
            || '% >= {{ (100 * var("signal_expansion_min_seat_utilisation")) | int }}%' as signal_detail,
        compared.*
    from compared
    where is_seat_utilisation_high and not was_seat_utilisation_high
    union all
    select
        'expansion_usage_growth' as signal_type, 'expansion' as signal_category,
        'Usage up ' || cast(cast(round(100 * usage_trend, 0) as {{ dbt.type_int() }}) as {{ dbt.type_string() }})
            || '% on the prior window' as signal_detail,
        compared.*
    from compared
    where is_usage_growing and not was_usage_growing
    union all
    select
        'tier_changed' as signal_type, 'tier' as signal_category,
        case
            when assigned_tier_number is null
                then 'Tier ' || cast(previous_tier_number as {{ dbt.type_string() }})
                    || ' ended: no live subscription'
            when previous_tier_number is null
                then 'Tier ' || cast(assigned_tier_number as {{ dbt.type_string() }}) || ' (' || assigned_tier
                    || ') assigned on a live subscription'
            else 'Tier changed from ' || cast(previous_tier_number as {{ dbt.type_string() }}) || ' to '
                || cast(assigned_tier_number as {{ dbt.type_string() }}) || ' (' || assigned_tier || ')'
        end as signal_detail,
        compared.*
    from compared
    where is_tier_changed
    union all
    select
        'downgrade_pending' as signal_type, 'tier' as signal_category,
        'Downgrade to ' || pending_downgrade_tier || ' pending until renewal on '
            || cast(pending_downgrade_date as {{ dbt.type_string() }}) as signal_detail,
        compared.*
    from compared
    where is_downgrade_pending and not was_downgrade_pending
),

final as (
    select
        account_id || '|' || cast(as_of_date as {{ dbt.type_string() }}) || '|' || signal_type as signal_id,
        account_id,
        as_of_date,
        signal_type,
        signal_category,
        signal_detail,
        assigned_tier,
        assigned_tier_number as tier_number,
        csm_owner_id,
        health_status,
        next_renewal_date,
        days_to_renewal,
        previous_as_of_date
    from signals
    {%- if is_incremental() %}
    where as_of_date = {{ as_of_date() }}
    {%- endif %}
)

select * from final
