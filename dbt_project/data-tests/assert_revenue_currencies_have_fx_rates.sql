{#- Every subscription's currency has an FX rate on its start date (seed fx_rates, or the
    model named by var revenue_fx_rates_model). One row per missing currency, with its
    subscriptions and accounts; the rows are kept in the warehouse (store_failures) and
    the quality report names this test and that table.
    Severity error: without a rate the subscription has no MRR in the reporting currency
    (mrr_reporting is null), so the account would look churned or contracted and every
    total would be short. Nothing is published that night; add the rate to
    seeds/fx_rates.csv (docs/revenue-definitions.md) and re-run the night. -#}
{{ config(severity='error', store_failures=true, meta={'action':
    'add a rate for each currency_code listed to dbt_project/seeds/fx_rates.csv (columns currency_code, '
    ~ 'quote_currency, valid_from, rate; valid_from on or before the first_start_date listed; '
    ~ 'docs/revenue-definitions.md, currencies), or fix the currency in the billing export (billing/subscriptions), '
    ~ 'then re-run the night'}) }}

with subscriptions as (
    select * from {{ ref('int_subscriptions_normalised') }}
),

missing as (
    select *
    from subscriptions
    where fx_rate_to_reporting is null
),

final as (
    select
        currency_code,
        count(*) as subscriptions_without_rate,
        count(distinct account_id) as accounts,
        min(start_date) as first_start_date,
        max(start_date) as last_start_date,
        min(subscription_id) as example_subscription_id,
        min(account_id) as example_account_id
    from missing
    group by currency_code
)

select * from final
