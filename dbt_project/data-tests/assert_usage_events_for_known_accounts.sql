{#- Usage of the usage window (var usage_window_days up to the as-of date) belongs to
    accounts the CRM knows. Events of an unknown account (an orphan: a typo, a test
    tenant, an account the CRM export lacks or quarantined) are loaded but feed no
    account's health or segments; this test names the accounts, their days and events
    (severity warn, rows kept in the warehouse, listed in the quality report). Bounded to
    the window, so the check does not grow with the history. -#}
{{ config(severity='warn', store_failures=true, meta={'action':
    'the usage of these account_id values is loaded but feeds no account: check the account_id in the usage '
    ~ 'export (usage/events), or deliver the accounts in the CRM export (crm/accounts); an account whose CRM '
    ~ 'row was quarantined keeps its earlier row (carried forward) and is not listed here'}) }}

with usage_days as (
    select * from {{ ref('int_usage_account_days_aggregated') }}
    where activity_date > cast({{ dbt.dateadd('day', -1 * var('usage_window_days'), as_of_date()) }} as date)
      and activity_date <= {{ as_of_date() }}
),

accounts as (
    select * from {{ ref('stg_crm__accounts') }}
),

final as (
    select
        usage_days.account_id,
        count(*) as active_days,
        sum(usage_days.event_count) as events,
        min(usage_days.activity_date) as first_activity_date,
        max(usage_days.activity_date) as last_activity_date
    from usage_days
    left join accounts
        on usage_days.account_id = accounts.account_id
    where accounts.account_id is null
    group by usage_days.account_id
)

select * from final
