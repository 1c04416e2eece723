{#- SCD type 2 of billing subscription periods, keyed to the run's as-of date (billing
    staging does not expose the drop's _run_date; its latest drop on or before the
    as-of date is that date's drop on a normal night): see macro
    run_date_keyed_snapshot and doc block snapshots_keyed_to_run_date. -#}
{% snapshot snap_billing__subscriptions %}
{{
    config(
        unique_key='subscription_id',
        strategy='timestamp',
        updated_at='changed_run_date',
    )
}}
{{ run_date_keyed_snapshot(
    ref('stg_billing__subscriptions'),
    key='subscription_id',
    tracked=['account_id', 'plan_name', 'product_line', 'start_date', 'end_date', 'billing_interval',
             'amount', 'currency_code', 'seats', 'is_per_seat'],
    seen_on=as_of_date(),
) }}
{% endsnapshot %}
