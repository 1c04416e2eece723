{#- Published: the action feed, one row per action per as-of date on which it is open,
    plus its closing row on the night it closes (action_status 'closed', with the date and
    how). Tonight's open actions: as_of_date = the run date and action_status = 'open'.
    Incremental on as_of_date. Doc block action_feed. -#}
{{ config(date_partitioned_incremental('as_of_date')) }}

with actions as (
    select * from {{ ref('int_account_actions_tracked') }} as daily
    {{ customers_daily_filter('daily') }}
),

final as (
    select
        cast(action_id as {{ dbt.type_string() }}) as action_id,
        cast(as_of_date as date) as as_of_date,
        cast(account_id as {{ dbt.type_string() }}) as account_id,
        cast(action_type as {{ dbt.type_string() }}) as action_type,
        cast(reason_code as {{ dbt.type_string() }}) as reason_code,
        cast(action_reason as {{ dbt.type_string() }}) as action_reason,
        cast(action_status as {{ dbt.type_string() }}) as action_status,
        cast(opened_date as date) as opened_date,
        cast(due_date as date) as due_date,
        cast(closed_date as date) as closed_date,
        cast(close_reason as {{ dbt.type_string() }}) as close_reason,
        cast(superseded_by_action_id as {{ dbt.type_string() }}) as superseded_by_action_id,
        cast(opened_date = as_of_date as boolean) as is_opened_tonight,
        cast(action_status = 'open' and as_of_date > due_date as boolean) as is_overdue,
        cast({{ dbt.datediff('opened_date', 'as_of_date', 'day') }} as integer) as days_open,
        cast(priority as {{ dbt.type_string() }}) as priority,
        cast(priority_rank as integer) as priority_rank,
        cast(tier_number as integer) as tier_number,
        cast(tier_name as {{ dbt.type_string() }}) as tier_name,
        cast(csm_owner_id as {{ dbt.type_string() }}) as csm_owner_id,
        cast(playbook as {{ dbt.type_string() }}) as playbook
    from actions
)

select * from final
