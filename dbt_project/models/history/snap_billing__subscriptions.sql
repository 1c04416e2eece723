{#- SCD type 2 of billing subscription periods keyed to the run date (doc block
    history_keyed_to_run_date), from snap_billing__subscriptions_versions. -#}
{{ scd2_from_versions(
    ref('snap_billing__subscriptions_versions'),
    key='subscription_id',
    tracked=['account_id', 'plan_name', 'product_line', 'start_date', 'end_date', 'billing_interval',
             'amount', 'currency_code', 'seats', 'is_per_seat'],
) }}
