{#- The action feed's history: one row per action per as-of date on which it is open,
    plus one row on the night it closes. Incremental on as_of_date (each night replaces its
    own slice, so a rerun of a night gives the same rows): a night compares tonight's
    conditions (int_account_action_conditions) with the actions open on the previous night
    in this model's own history (the latest partition before the as-of date, as
    int_account_tiers_assigned reads its previous night):
    - kept: open last night and its condition (same account, type and reason) holds
      tonight; opened date, due date, priority, tier and reason stay those of the opening;
    - opened: the condition holds tonight and no action of that account, type and reason
      was open last night (so an action is never opened twice); a tier change opens only
      on the night of the change;
    - closed: open last night and its condition no longer holds: churned (no live
      subscription any more), superseded (an action of the same account and type opened
      tonight, e.g. at-risk -> critical or 60 -> 30 days to renewal; a pending downgrade
      when the tier change opens), expired (a tier change past its due date), else
      resolved.
    A first build or a full refresh has no previous night: every condition that may open
    opens. Doc block action_feed. -#}
{{ config(date_partitioned_incremental('as_of_date')) }}

with conditions as (
    select * from {{ ref('int_account_action_conditions') }}
),

accounts as (
    select * from {{ ref('int_accounts_enriched') }}
),

{% if is_incremental() %}
previous as (
    select *
    from {{ this }}
    where as_of_date = (
        select max(as_of_date) from {{ this }} where as_of_date < {{ as_of_date() }}
    )
      and action_status = 'open'
),
{% else %}
previous as (
    select
        cast(null as {{ dbt.type_string() }}) as action_id,
        cast(null as {{ dbt.type_string() }}) as account_id,
        cast(null as {{ dbt.type_string() }}) as action_type,
        cast(null as {{ dbt.type_string() }}) as reason_code,
        cast(null as {{ dbt.type_string() }}) as action_reason,
        cast(null as date) as opened_date,
        cast(null as date) as due_date,
        cast(null as {{ dbt.type_string() }}) as priority,
        cast(null as {{ dbt.type_int() }}) as priority_rank,
        cast(null as {{ dbt.type_int() }}) as tier_number,
        cast(null as {{ dbt.type_string() }}) as tier_name,
        cast(null as {{ dbt.type_string() }}) as csm_owner_id,
        cast(null as {{ dbt.type_string() }}) as playbook
    where 1 = 0
),
{% endif %}

kept as (
    select
        previous.action_id,
        conditions.account_id,
        conditions.as_of_date,
        previous.action_type,
        previous.reason_code,
        previous.action_reason,
        'open' as action_status,
        previous.opened_date,
        previous.due_date,
        cast(null as date) as closed_date,
        cast(null as {{ dbt.type_string() }}) as close_reason,
        cast(null as {{ dbt.type_string() }}) as superseded_by_action_id,
        previous.priority,
        previous.priority_rank,
        previous.tier_number,
        previous.tier_name,
        conditions.csm_owner_id,
        previous.playbook
    from previous
    inner join conditions
        on previous.account_id = conditions.account_id
        and previous.action_type = conditions.action_type
        and previous.reason_code = conditions.reason_code
),

opened as (
    select
        conditions.account_id || '|' || conditions.action_type || '|' || conditions.reason_code || '|'
            || cast(conditions.as_of_date as {{ dbt.type_string() }}) as action_id,
        conditions.account_id,
        conditions.as_of_date,
        conditions.action_type,
        conditions.reason_code,
        conditions.action_reason,
        'open' as action_status,
        conditions.as_of_date as opened_date,
        conditions.due_date_if_opened as due_date,
        cast(null as date) as closed_date,
        cast(null as {{ dbt.type_string() }}) as close_reason,
        cast(null as {{ dbt.type_string() }}) as superseded_by_action_id,
        conditions.priority,
        conditions.priority_rank,
        conditions.tier_number,
        conditions.tier_name,
        conditions.csm_owner_id,
        conditions.playbook
    from conditions
    left join previous
        on conditions.account_id = previous.account_id
        and conditions.action_type = previous.action_type
        and conditions.reason_code = previous.reason_code
    where previous.action_id is null
      and conditions.can_open
),

ending as (
    select previous.*
    from previous
    left join conditions
        on previous.account_id = conditions.account_id
        and previous.action_type = conditions.action_type
        and previous.reason_code = conditions.reason_code
    where conditions.account_id is null
),

successors as (
    {#- what supersedes an ending action: an action of the same type opened tonight, or
        for a pending downgrade the tier change it became (the first by id when several) -#}
    select
        ending.action_id,
        min(opened.action_id) as superseded_by_action_id
    from ending
    inner join opened
        on ending.account_id = opened.account_id
        and (opened.action_type = ending.action_type
             or (ending.action_type = 'downgrade_pending' and opened.action_type = 'tier_changed'))
    group by ending.action_id
),

closed as (
    select
        ending.action_id,
        ending.account_id,
        {{ as_of_date() }} as as_of_date,
        ending.action_type,
        ending.reason_code,
        ending.action_reason,
        'closed' as action_status,
        ending.opened_date,
        ending.due_date,
        {{ as_of_date() }} as closed_date,
        case
            when coalesce(accounts.account_status, 'gone') <> 'live' then 'churned'
            when successors.superseded_by_action_id is not null then 'superseded'
            when ending.action_type = 'tier_changed' then 'expired'
            else 'resolved'
        end as close_reason,
        case
            when coalesce(accounts.account_status, 'gone') = 'live' then successors.superseded_by_action_id
        end as superseded_by_action_id,
        ending.priority,
        ending.priority_rank,
        ending.tier_number,
        ending.tier_name,
        coalesce(accounts.csm_owner_id, ending.csm_owner_id) as csm_owner_id,
        ending.playbook
    from ending
    left join successors
        on ending.action_id = successors.action_id
    left join accounts
        on ending.account_id = accounts.account_id
),

final as (
    select * from kept
    union all
    select * from opened
    union all
    select * from closed
)

select * from final
