{#- Two subscriptions of one account and product line that overlap in time: usually the
    same subscription delivered twice under two ids (both are counted in MRR), sometimes
    a genuine second contract. This test names each overlapping pair (severity warn, rows
    kept in the warehouse, listed in the quality report) so an operator can check it.
    End dates are exclusive (a renewal starting on the previous period's end date does
    not overlap). -#}
{{ config(severity='warn', store_failures=true, meta={'action':
    'both subscriptions of each pair count in MRR: if one is the other delivered twice under two ids, '
    ~ 'fix the billing export (billing/subscriptions); a genuine second contract needs nothing'}) }}

with subscriptions as (
    select * from {{ ref('stg_billing__subscriptions') }}
),

final as (
    select
        first_subscription.account_id,
        first_subscription.product_line,
        first_subscription.subscription_id as subscription_id,
        second_subscription.subscription_id as overlapping_subscription_id,
        first_subscription.start_date,
        first_subscription.end_date,
        second_subscription.start_date as overlapping_start_date,
        second_subscription.end_date as overlapping_end_date
    from subscriptions as first_subscription
    inner join subscriptions as second_subscription
        on first_subscription.account_id = second_subscription.account_id
        and first_subscription.product_line = second_subscription.product_line
        and first_subscription.subscription_id < second_subscription.subscription_id
        and first_subscription.start_date < coalesce(second_subscription.end_date, cast('9999-12-31' as date))
        and second_subscription.start_date < coalesce(first_subscription.end_date, cast('9999-12-31' as date))
)

select * from final
