{#- Daily usage counts whose key is unknown on the as-of date: a subscription that
    billing/subscriptions does not hold, or an account the CRM does not hold. Their usage is
    not counted (a subscription's) or counts for no known account. Severity warn: listed in the
    quality report so an operator can fix the export's keys (or its mapping). Only the night's
    drop is checked. -#}
{{ config(severity='warn', store_failures=true) }}

with counts as (
    select * from {{ ref('stg_usage__daily_counts') }}
    where loaded_run_date = {{ as_of_date() }}
),

subscriptions as (
    select * from {{ ref('stg_billing__subscriptions') }}
),

accounts as (
    select * from {{ ref('stg_crm__accounts') }}
),

final as (
    select distinct
        counts.account_id,
        counts.subscription_id,
        case when counts.account_id is null then 'unknown subscription' else 'unknown account' end as problem
    from counts
    left join subscriptions
        on counts.subscription_id = subscriptions.subscription_id
    left join accounts
        on counts.account_id = accounts.account_id
    where (counts.account_id is null and subscriptions.subscription_id is null)
       or (counts.account_id is not null and accounts.account_id is null)
)

select * from final
